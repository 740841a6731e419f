-- Connections follow their installation at GitHub: suspended while it is (an uninstalled one is
-- removed), and a PAT's expiry when GitHub reports one.
ALTER TABLE github_connections ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'suspended'));
ALTER TABLE github_connections ADD COLUMN pat_expires_at TIMESTAMPTZ;
CREATE INDEX github_connections_installation ON github_connections (host, installation_id);

-- A scope stops being served when a repository it holds leaves the installation.
ALTER TABLE session_scopes ADD COLUMN revoked_at TIMESTAMPTZ;

-- Platforms provision one team per project, found again by their own id.
ALTER TABLE teams ADD COLUMN external_id TEXT;
ALTER TABLE teams ADD COLUMN notification_email TEXT;
CREATE UNIQUE INDEX teams_external_id ON teams (external_id) WHERE external_id IS NOT NULL;

-- The installation flow's single-use states.
CREATE TABLE install_states (
    nonce TEXT PRIMARY KEY,
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    return_to TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX install_states_expires ON install_states (expires_at);

-- Webhook deliveries seen, so a redelivery changes nothing.
CREATE TABLE webhook_deliveries (
    host TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    event TEXT NOT NULL,
    -- A signed body seen before is a replay, whatever delivery id it arrives with.
    body_sha256 TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (host, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
CREATE UNIQUE INDEX webhook_deliveries_body ON webhook_deliveries (host, body_sha256);
