//! JSON Schema checks: every vector file against `conformance/vector.schema.json`, and
//! every expected protocol frame / rejection body against the protocol's own schemas
//! (`protocol-spec/schemas/`), so a vector can never bless a frame the spec forbids.

use anyhow::Context as _;
use conformance_core::{StepInput, Vector};
use engine::Command;
use serde_json::Value;

/// Compiled validators.
pub struct Schemas {
    vector: jsonschema::Validator,
    server: jsonschema::Validator,
    envelope: jsonschema::Validator,
    rejection: jsonschema::Validator,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schemas")
    }
}

fn load(path: std::path::PathBuf) -> anyhow::Result<jsonschema::Validator> {
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let schema: Value = serde_json::from_str(&text)?;
    jsonschema::validator_for(&schema)
        .map_err(|e| anyhow::anyhow!("{}: not a valid JSON Schema: {e}", path.display()))
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .take(5)
        .map(|e| format!("{}: {e}", e.instance_path().as_str()))
        .collect()
}

impl Schemas {
    /// Load the vector schema and the protocol schemas.
    pub fn load() -> anyhow::Result<Schemas> {
        let spec = crate::workspace_dir().join("protocol-spec/schemas");
        Ok(Schemas {
            vector: load(crate::suite_dir().join("vector.schema.json"))?,
            server: load(spec.join("server-message.schema.json"))?,
            envelope: load(spec.join("envelope-message.schema.json"))?,
            rejection: load(spec.join("upgrade-rejection.schema.json"))?,
        })
    }

    /// Problems of one vector file (its raw JSON) against the vector schema.
    pub fn check_vector_file(&self, raw: &Value) -> Vec<String> {
        errors(&self.vector, raw)
    }

    /// Problems of a vector's expected frames and rejection bodies against the
    /// protocol schemas. Frames pushed verbatim by the server API are skipped.
    pub fn check_protocol(&self, v: &Vector) -> Vec<String> {
        let mut out = Vec::new();
        for (i, step) in v.steps.iter().enumerate() {
            let verbatim = match &step.input {
                StepInput::Command {
                    command:
                        Command::Broadcast { .. }
                        | Command::SendTo { .. }
                        | Command::SendToUser { .. }
                        | Command::SendToRoom { .. }
                        | Command::BroadcastToResource { .. },
                    ..
                } => true,
                // A handler's answer may carry commands that send verbatim messages.
                StepInput::Completed {
                    result: engine::HostResult::Handler(r),
                    ..
                } => !r.commands.is_empty(),
                _ => false,
            };
            for (k, a) in step.expect.iter().enumerate() {
                match a["action"].as_str() {
                    // Frames that are not JSON (`raw`: Engine.IO / Socket.IO packets)
                    // are not protocol frames.
                    Some("send" | "sendMany") if !verbatim && a["frame"].get("data").is_some() => {
                        let data = &a["frame"]["data"];
                        // Frames without `type` on envelope routes are `{event, data}`.
                        let schema = if data.get("type").is_none() && data.get("event").is_some() {
                            &self.envelope
                        } else {
                            &self.server
                        };
                        for e in errors(schema, data) {
                            out.push(format!("step {i} action {k}: frame {data}: {e}"));
                        }
                    }
                    Some("reject") => {
                        for e in errors(&self.rejection, &a["body"]) {
                            out.push(format!("step {i} action {k}: rejection body: {e}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }
}
