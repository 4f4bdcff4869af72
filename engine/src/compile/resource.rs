//! A resource's compiled guards (CEL) and record schema.

use std::collections::BTreeMap;

use crate::config::ResourceConfig;
use crate::error::ConfigIssue;
use crate::guard::{Guard, GuardAction, GuardEnv};
use crate::validation::RecordSchema;

/// A resource's compiled guards and schema.
#[derive(Debug, Default)]
pub(crate) struct CompiledResource {
    pub(crate) guards: BTreeMap<GuardAction, Guard>,
    pub(crate) schema: Option<RecordSchema>,
    pub(crate) host_guards: Vec<GuardAction>,
}

impl CompiledResource {
    /// Compile the guards of resource `name` in the shared CEL environment `env` (built
    /// on first use: a config without guards never builds one) and its schema; each
    /// problem goes to `issues` with its field path.
    pub(crate) fn compile(
        env: &mut Option<GuardEnv>,
        name: &str,
        rc: &ResourceConfig,
        issues: &mut Vec<ConfigIssue>,
    ) -> CompiledResource {
        let mut guards = BTreeMap::new();
        for (action, src) in &rc.guards {
            let env = env.get_or_insert_with(GuardEnv::new);
            match Guard::compile_in(env, src) {
                Ok(g) => {
                    guards.insert(*action, g);
                }
                Err(problem) => issues.push(ConfigIssue {
                    path: format!("resources.{name}.guards.{}", action.as_str()),
                    problem,
                }),
            }
        }
        let schema = rc
            .schema
            .as_ref()
            .and_then(|schema| match RecordSchema::compile(schema) {
                Ok(s) => Some(s),
                Err(problem) => {
                    issues.push(ConfigIssue {
                        path: format!("resources.{name}.schema"),
                        problem,
                    });
                    None
                }
            });
        CompiledResource {
            guards,
            schema,
            host_guards: rc.host_guards.clone(),
        }
    }
}
