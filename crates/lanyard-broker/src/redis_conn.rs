//! A lazily connected, shared Redis handle. The server starts even when Redis is down; readiness
//! reports it. One multiplexed connection is shared through redis's `ConnectionManager`, which
//! reconnects by itself after a dropped connection (once, with a short timeout, so an outage
//! costs a fast error per call rather than a hang); until the first connection succeeds, each
//! call tries to make it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use lanyard_core::redact::redact_url;

/// A Redis URL that redacts its password when printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// A URL the configuration has checked.
    pub fn new(url: String) -> Self {
        Self(url)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RedisUrl")
            .field(&redact_url(&self.0))
            .finish()
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RedisUnavailable {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

pub struct RedisHandle {
    url: RedisUrl,
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisHandle {
    pub fn new(url: RedisUrl) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url.expose())?;
        Ok(Self {
            url,
            client,
            connection: Mutex::new(None),
        })
    }

    /// The shared connection, connecting on first use.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisUnavailable> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(CONNECT_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(100);
        let conn = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| RedisUnavailable::Timeout(CONNECT_TIMEOUT * 2))??;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// A dedicated connection subscribed to `channel` (pub/sub needs a connection of its own).
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, RedisUnavailable> {
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| RedisUnavailable::Timeout(CONNECT_TIMEOUT))??;
        tokio::time::timeout(CONNECT_TIMEOUT, pubsub.subscribe(channel))
            .await
            .map_err(|_| RedisUnavailable::Timeout(CONNECT_TIMEOUT))??;
        Ok(pubsub)
    }

    /// Publishes `message` on `channel`; a failure is the caller's to log.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), RedisUnavailable> {
        let mut conn = self.connection().await?;
        let sent = tokio::time::timeout(
            CONNECT_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(message)
                .query_async::<i64>(&mut conn),
        )
        .await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(RedisUnavailable::Timeout(CONNECT_TIMEOUT)),
        }
    }

    pub async fn ping(&self) -> Result<(), RedisUnavailable> {
        let mut conn = self.connection().await?;
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|_| RedisUnavailable::Timeout(CONNECT_TIMEOUT))??;
        Ok(())
    }
}
