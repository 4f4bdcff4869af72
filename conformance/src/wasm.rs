//! The wasm target: the conformance runner compiled to `wasm32-unknown-unknown`
//! (`conformance/wasm-guest`, a raw C-ABI module without JS glue) executed with
//! wasmtime.
//!
//! Guest ABI (all integers are wasm `i32` unless noted):
//! - `memory`: the guest's linear memory;
//! - `alloc(len) -> ptr` and `dealloc(ptr, len)`: byte buffers in guest memory;
//! - `run(ptr, len) -> i64`: run the vector JSON at `ptr..ptr+len` and return the
//!   [`RunResult`](conformance_core::RunResult) JSON packed as `(ptr << 32) | len`,
//!   which the host frees with `dealloc`.
//!
//! The engine reads no clock and no randomness, so the module should import nothing.
//! Its dependency tree does link `js-sys` / wasm-bindgen code on wasm32 (jsonwebtoken's
//! clock, getrandom 0.3's `wasm_js` glue, which the guest compiles but replaces with its
//! own `custom` backend for jsonschema's hash seeds), which leaves
//! imports from wasm-bindgen's placeholder modules in a module built without
//! wasm-bindgen. Those — and only those — are provided here as stubs that **trap**:
//! if the engine ever reached one, the vector would fail loudly on the wasm target.
//! Any other import refuses the module.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use wasmtime::{Config, Engine, Instance, Linker, Memory, Module, OptLevel, Store, TypedFunc};

/// Where `scripts/conformance.sh` puts the guest module.
pub fn default_module_path() -> PathBuf {
    crate::workspace_dir()
        .join("target-wasm/wasm32-unknown-unknown/wasm-release/conformance_guest.wasm")
}

/// Import modules wasm-bindgen leaves in a module it did not process. Their functions
/// are stubbed as traps.
pub const PLACEHOLDER_MODULES: &[&str] =
    &["__wbindgen_placeholder__", "__wbindgen_externref_xform__"];

/// The command that builds the guest (run from the workspace root).
pub const BUILD_HINT: &str = "scripts/conformance.sh --build-only";

/// A compiled guest module.
pub struct Guest {
    engine: Engine,
    module: Module,
    linker: Linker<()>,
    /// How long Cranelift took to compile the module.
    pub compile_time: Duration,
    /// Size of the module file in bytes.
    pub size: usize,
    /// The module's imports as `module.name` (stubbed as traps; see the module docs).
    pub imports: Vec<String>,
}

impl std::fmt::Debug for Guest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guest")
            .field("compile_time", &self.compile_time)
            .field("size", &self.size)
            .field("imports", &self.imports)
            .finish()
    }
}

impl Guest {
    /// Load and compile the module; fails if it has any import.
    pub fn load(path: &Path) -> anyhow::Result<Guest> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "reading the wasm guest {} (build it with `{BUILD_HINT}`)",
                path.display()
            )
        })?;
        // Compile time dominates this target (the guest is several MB of code and test
        // builds run Cranelift unoptimised): skip Cranelift's optimisation passes — the
        // vectors are tiny, so run time does not matter — and compile functions on
        // every core.
        let mut config = Config::new();
        config.cranelift_opt_level(OptLevel::None);
        config.parallel_compilation(true);
        let engine = Engine::new(&config).map_err(|e| anyhow!("configuring wasmtime: {e}"))?;
        let t0 = Instant::now();
        let module = Module::new(&engine, &bytes).map_err(|e| anyhow!("compiling: {e}"))?;
        let compile_time = t0.elapsed();
        let imports: Vec<String> = module
            .imports()
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect();
        let foreign: Vec<&String> = imports
            .iter()
            .filter(|i| {
                !PLACEHOLDER_MODULES
                    .iter()
                    .any(|m| i.starts_with(&format!("{m}.")))
            })
            .collect();
        if !foreign.is_empty() {
            bail!(
                "the wasm guest may import only wasm-bindgen placeholders (stubbed as traps), but it imports: {}",
                foreign.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        for export in ["memory", "alloc", "dealloc", "run"] {
            if module.get_export(export).is_none() {
                bail!("the wasm guest does not export `{export}`");
            }
        }
        let mut linker = Linker::new(&engine);
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(|e| anyhow!("stubbing imports: {e}"))?;
        Ok(Guest {
            engine,
            module,
            linker,
            compile_time,
            size: bytes.len(),
            imports,
        })
    }

    /// Run one vector (its JSON text) in a fresh instance and return the guest's
    /// `RunResult` JSON text.
    pub fn run(&self, vector_json: &str) -> anyhow::Result<String> {
        let mut store = Store::new(&self.engine, ());
        let instance = self
            .linker
            .instantiate(&mut store, &self.module)
            .map_err(|e| anyhow!("instantiating: {e}"))?;
        let abi = Abi::new(&mut store, &instance)?;
        abi.call(&mut store, vector_json)
    }
}

struct Abi {
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    dealloc: TypedFunc<(u32, u32), ()>,
    run: TypedFunc<(u32, u32), u64>,
}

impl Abi {
    fn new(store: &mut Store<()>, inst: &Instance) -> anyhow::Result<Abi> {
        let err = |e: wasmtime::Error| anyhow!("{e}");
        Ok(Abi {
            memory: inst
                .get_memory(&mut *store, "memory")
                .ok_or_else(|| anyhow!("no `memory` export"))?,
            alloc: inst.get_typed_func(&mut *store, "alloc").map_err(err)?,
            dealloc: inst.get_typed_func(&mut *store, "dealloc").map_err(err)?,
            run: inst.get_typed_func(&mut *store, "run").map_err(err)?,
        })
    }

    fn call(&self, store: &mut Store<()>, input: &str) -> anyhow::Result<String> {
        let err = |e: wasmtime::Error| anyhow!("{e}");
        let len = u32::try_from(input.len())?;
        let ptr = self.alloc.call(&mut *store, len).map_err(err)?;
        self.memory
            .write(&mut *store, ptr as usize, input.as_bytes())
            .map_err(|e| anyhow!("writing the input: {e}"))?;
        let packed = self
            .run
            .call(&mut *store, (ptr, len))
            .map_err(|e| anyhow!("guest trapped: {e}"))?;
        self.dealloc.call(&mut *store, (ptr, len)).map_err(err)?;
        let (rptr, rlen) = ((packed >> 32) as u32, packed as u32);
        let mut buf = vec![0u8; rlen as usize];
        self.memory
            .read(&*store, rptr as usize, &mut buf)
            .map_err(|e| anyhow!("reading the output: {e}"))?;
        self.dealloc.call(&mut *store, (rptr, rlen)).map_err(err)?;
        String::from_utf8(buf).map_err(|_| anyhow!("the guest output is not UTF-8"))
    }
}
