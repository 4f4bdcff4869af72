//! A resource's compiled guards and schema, as the engine looks them up (compiled once
//! with the config: [`crate::compile`]).

use std::sync::Arc;

pub(crate) use crate::compile::CompiledResource;
use crate::machine::Engine;

impl Engine {
    pub(in crate::machine) fn compiled(&self, resource: &str) -> Arc<CompiledResource> {
        self.compiled.get(resource).cloned().unwrap_or_default()
    }
}
