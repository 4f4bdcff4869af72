//! Compiling a config: one pass that checks every rule and builds what the engine runs
//! (CEL guards, record schemas, channel namespaces, the authenticator), so each guard,
//! schema and key is compiled once per deployment.
//!
//! [`crate::config`] is plain data; [`CompiledConfig::compile`] turns it into a
//! [`CompiledConfig`] or reports every problem with its field path.
//! [`Engine::from_compiled`](crate::Engine::from_compiled) consumes it without checking
//! or compiling anything again; [`Config::validate`] is the same pass with its result
//! dropped (`check-config`, a config loaded long before the engine starts).
//!
//! ```
//! use engine::{CompiledConfig, Engine};
//!
//! let compiled = CompiledConfig::from_json(r#"{"resources": {"posts": {
//!     "guards": {"delete": "user.role == 'admin'"}}}}"#).unwrap();
//! assert_eq!(compiled.config().resources.len(), 1);
//! let engine = Engine::from_compiled(compiled, 7);
//! assert_eq!(engine.connection_count(), 0);
//!
//! let err = CompiledConfig::from_json(r#"{"resources": {"posts": {
//!     "guards": {"delete": "user.role =="}}}}"#).unwrap_err();
//! assert_eq!(err.issues[0].path, "resources.posts.guards.delete");
//! ```

mod check;
mod resource;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::app::CompiledApp;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::ConfigError;
use crate::namespace::Namespaces;

pub(crate) use resource::CompiledResource;

/// A config with everything the engine runs compiled: what
/// [`Engine::from_compiled`](crate::Engine::from_compiled) consumes.
///
/// Cloning is cheap for the compiled guards and schemas (shared); a host that builds
/// several engines from one deployment (a test reset) compiles once and clones.
#[derive(Debug, Clone)]
pub struct CompiledConfig {
    pub(crate) config: Config,
    pub(crate) auth: Authenticator,
    pub(crate) resources: BTreeMap<String, Arc<CompiledResource>>,
    pub(crate) namespaces: Namespaces,
    pub(crate) app: Arc<CompiledApp>,
}

impl CompiledConfig {
    /// Check `config` and compile its guards, schemas, namespaces and keys, once.
    /// Returns every problem found, each with its field path.
    pub fn compile(config: Config) -> Result<Self, ConfigError> {
        let parts = check::check(&config)?;
        Ok(Self {
            config,
            auth: parts.auth,
            resources: parts.resources,
            namespaces: parts.namespaces,
            app: Arc::new(parts.app),
        })
    }

    /// Parse a JSON document into a config and compile it.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::compile(parse_json(text)?)
    }

    /// Build a config from an already parsed JSON value (e.g. converted from TOML) and
    /// compile it.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        Self::compile(parse_value(value)?)
    }

    /// The config it was compiled from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The config it was compiled from, dropping the compiled parts.
    pub fn into_config(self) -> Config {
        self.config
    }
}

impl Config {
    /// Parse a JSON document into a config and validate it.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config = parse_json(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Build a config from an already parsed JSON value (e.g. converted from TOML) and validate it.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        let config = parse_value(value)?;
        config.validate()?;
        Ok(config)
    }

    /// Check the semantic rules serde cannot express. Returns every problem found.
    ///
    /// This is [`CompiledConfig::compile`] with the compiled parts dropped; to build an
    /// engine as well, compile once and use
    /// [`Engine::from_compiled`](crate::Engine::from_compiled).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::check(self).map(drop)
    }
}

/// A serde error as a config issue at its field path.
fn serde_issue<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ConfigError {
    let path = e.path().to_string();
    ConfigError::single(
        if path == "." { String::new() } else { path },
        e.into_inner().to_string(),
    )
}

fn parse_json(text: &str) -> Result<Config, ConfigError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(serde_issue)
}

fn parse_value(value: serde_json::Value) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(serde_issue)
}

#[cfg(test)]
mod tests;
