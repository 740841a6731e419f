//! A lazily connected, shared Redis handle. The server starts even when Redis is down; readiness
//! reports it, and later uses reconnect.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use crate::config::RedisUrl;

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
    manager: Mutex<Option<ConnectionManager>>,
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
            manager: Mutex::new(None),
        })
    }

    /// A multiplexed connection, connecting on first use.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisUnavailable> {
        let mut slot = self.manager.lock().await;
        if let Some(manager) = slot.as_ref() {
            return Ok(manager.clone());
        }
        let manager =
            tokio::time::timeout(CONNECT_TIMEOUT, ConnectionManager::new(self.client.clone()))
                .await
                .map_err(|_| RedisUnavailable::Timeout(CONNECT_TIMEOUT))??;
        *slot = Some(manager.clone());
        Ok(manager)
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
