//! Compiling each resource's guards (CEL) and record schema once, when the engine
//! is built.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::ResourceConfig;
use crate::engine::Engine;
use crate::error::ConfigError;
use crate::guard::{Guard, GuardAction, GuardEnv};
use crate::validation::RecordSchema;

/// A resource's compiled guards and schema.
#[derive(Debug, Default)]
pub(crate) struct CompiledResource {
    pub(in crate::engine) guards: BTreeMap<GuardAction, Guard>,
    pub(super) schema: Option<RecordSchema>,
    pub(super) host_guards: Vec<GuardAction>,
}

/// Compile every resource's guards and schema (config validation already vetted them).
pub(crate) fn compile_resources(
    resources: &BTreeMap<String, ResourceConfig>,
) -> Result<BTreeMap<String, Arc<CompiledResource>>, ConfigError> {
    let mut out = BTreeMap::new();
    // One CEL environment for every guard, built only if there is a guard.
    let mut env: Option<GuardEnv> = None;
    for (name, rc) in resources {
        let mut guards = BTreeMap::new();
        for (action, src) in &rc.guards {
            let env = env.get_or_insert_with(GuardEnv::new);
            let g = Guard::compile_in(env, src).map_err(|e| {
                ConfigError::single(format!("resources.{name}.guards.{}", action.as_str()), e)
            })?;
            guards.insert(*action, g);
        }
        let schema = rc
            .schema
            .as_ref()
            .map(RecordSchema::compile)
            .transpose()
            .map_err(|e| ConfigError::single(format!("resources.{name}.schema"), e))?;
        out.insert(
            name.clone(),
            Arc::new(CompiledResource {
                guards,
                schema,
                host_guards: rc.host_guards.clone(),
            }),
        );
    }
    Ok(out)
}

impl Engine {
    pub(in crate::engine) fn compiled(&self, resource: &str) -> Arc<CompiledResource> {
        self.compiled.get(resource).cloned().unwrap_or_default()
    }
}
