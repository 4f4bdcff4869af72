//! Channel streams shared by the cluster, kept in Redis (PROTOCOL.md §22.1, "history,
//! offsets, epochs").
//!
//! The engine asks for two operations ([`ClusterMessage::Append`],
//! [`ClusterMessage::Fetch`]); each is one Lua script, so it is atomic against every
//! other node. Keys (in the broker URL's database; `KEY` is the engine's stream key: the
//! channel name, or `\0tenant\0channel`):
//!
//! | key | type | content | TTL |
//! |---|---|---|---|
//! | `switchboard:meta:KEY` | hash | `epoch` (created once with `HSETNX`), `top` (latest offset, `HINCRBY`) | `max(ttlMs, metaTtlMs)` after each publication; `ttlMs` when a read created it |
//! | `switchboard:log:KEY` | stream | one entry per publication, id `OFFSET-0`, fields `at` (Redis `TIME`, ms) and `p` (the `sequenced` message, JSON) | `ttlMs` after each publication; `XADD MAXLEN = size` |
//!
//! Append: create the epoch if absent (a new epoch drops any leftover log), increment
//! `top`, add the entry, trim, refresh the TTLs and `PUBLISH` the sequenced message on
//! the bus, so every node receives the publications of a stream in offset order. Fetch:
//! create the epoch if absent, return `[epoch, top, p...]` with the entries younger than
//! `ttlMs`. Appends travel in the same pipeline as the other bus messages (order kept);
//! a fetch runs after what was queued before it (a node reads its own writes).

use engine::cluster::{ClusterMessage, FetchedStream, StreamPublication, StreamSpec};

/// The append script: `KEYS` meta, log; `ARGV` epoch, size, ttlMs, metaTtlMs, bus
/// channel, the sequenced message without its offset and epoch. Returns the offset.
pub const APPEND: &str = r#"
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = redis.call('HINCRBY', KEYS[1], 'top', 1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local body = string.sub(ARGV[6], 1, -2)
local msg = body .. ',"offset":' .. string.format('%d', top) .. ',"epoch":' .. cjson.encode(epoch) .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], string.format('%d-0', top), 'at', string.format('%d', now), 'p', msg)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[3]), tonumber(ARGV[4])))
redis.call('PUBLISH', ARGV[5], msg)
return top
"#;

/// The fetch script: `KEYS` meta, log; `ARGV` epoch, ttlMs. Returns `[epoch, top, p...]`.
pub const FETCH: &str = r#"
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'top', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = redis.call('HGET', KEYS[1], 'top') or '0'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local out = {epoch, top}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  local f = e[2]
  local at, p = nil, nil
  for i = 1, #f, 2 do
    if f[i] == 'at' then at = tonumber(f[i + 1]) elseif f[i] == 'p' then p = f[i + 1] end
  end
  if at and p and at + ttl > now then out[#out + 1] = p end
end
return out
"#;

/// The SHA1s of the scripts as loaded in one Redis connection session.
#[derive(Debug, Clone)]
pub struct Scripts {
    append: String,
    fetch: String,
}

fn meta_key(key: &str) -> Vec<u8> {
    [b"switchboard:meta:".as_slice(), key.as_bytes()].concat()
}

fn log_key(key: &str) -> Vec<u8> {
    [b"switchboard:log:".as_slice(), key.as_bytes()].concat()
}

/// Load both scripts (after each connection: a restarted Redis forgot them).
pub async fn load(conn: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<Scripts> {
    let append: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(APPEND)
        .query_async(conn)
        .await?;
    let fetch: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(FETCH)
        .query_async(conn)
        .await?;
    Ok(Scripts { append, fetch })
}

/// The sequenced message's JSON without its offset and epoch (they are added by the
/// script): `{"kind":"sequenced",...}`.
fn unordered(publication: StreamPublication) -> Result<String, serde_json::Error> {
    let mut p = publication;
    p.offset = 0;
    p.epoch.clear();
    serde_json::to_string(&ClusterMessage::Sequenced(p))
}

/// Add an append to `pipe` (its result, the offset, is ignored).
pub fn add_append(
    pipe: &mut redis::Pipeline,
    scripts: &Scripts,
    bus: &str,
    stream: &StreamSpec,
    publication: StreamPublication,
) -> Result<(), serde_json::Error> {
    let body = unordered(publication)?;
    pipe.cmd("EVALSHA")
        .arg(&scripts.append)
        .arg(2)
        .arg(meta_key(&stream.key))
        .arg(log_key(&stream.key))
        .arg(&stream.epoch)
        .arg(stream.size)
        .arg(stream.ttl_ms.max(1))
        .arg(stream.meta_ttl_ms)
        .arg(bus)
        .arg(body)
        .ignore();
    Ok(())
}

/// Read a stream. `Err` carries the Redis error (the caller tells an I/O failure from
/// a refused command).
pub async fn fetch(
    conn: &mut redis::aio::MultiplexedConnection,
    scripts: &Scripts,
    stream: &StreamSpec,
) -> redis::RedisResult<Result<FetchedStream, String>> {
    let reply: Vec<String> = redis::cmd("EVALSHA")
        .arg(&scripts.fetch)
        .arg(2)
        .arg(meta_key(&stream.key))
        .arg(log_key(&stream.key))
        .arg(&stream.epoch)
        .arg(stream.ttl_ms.max(1))
        .query_async(conn)
        .await?;
    Ok(parse_fetch(reply))
}

/// `[epoch, top, p...]` → the stream.
fn parse_fetch(reply: Vec<String>) -> Result<FetchedStream, String> {
    let mut it = reply.into_iter();
    let (Some(epoch), Some(top)) = (it.next(), it.next()) else {
        return Err("the fetch script answered without a position".into());
    };
    let offset = top
        .parse::<u64>()
        .map_err(|e| format!("stream offset `{top}`: {e}"))?;
    let mut publications = Vec::new();
    for p in it {
        match serde_json::from_str::<ClusterMessage>(&p) {
            Ok(ClusterMessage::Sequenced(p)) => publications.push(p),
            Ok(_) => return Err("a stream entry is not a sequenced publication".into()),
            Err(e) => return Err(format!("unreadable stream entry: {e}")),
        }
    }
    Ok(FetchedStream {
        epoch,
        offset,
        publications,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication() -> StreamPublication {
        StreamPublication {
            node: "n1".into(),
            request: Some(3),
            tenant: None,
            channel: "chat:a".into(),
            from: "c1".into(),
            data: Some(serde_json::json!({"x": 1})),
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            resource_too: false,
            offset: 0,
            epoch: String::new(),
        }
    }

    #[test]
    fn the_stored_message_is_the_sequenced_message_once_the_script_appends_its_position() {
        let body = unordered(publication()).unwrap();
        assert!(body.ends_with('}') && !body.contains("offset"), "{body}");
        // What the script does to it.
        let stored = format!(
            "{},\"offset\":7,\"epoch\":\"EP\"}}",
            &body[..body.len() - 1]
        );
        let parsed = parse_fetch(vec!["EP".into(), "7".into(), stored]).unwrap();
        let mut want = publication();
        want.offset = 7;
        want.epoch = "EP".into();
        assert_eq!(parsed.publications, vec![want]);
        assert_eq!((parsed.offset, parsed.epoch.as_str()), (7, "EP"));
    }

    #[test]
    fn a_fetch_answer_without_a_position_is_an_error() {
        assert!(parse_fetch(vec![]).is_err());
        assert!(parse_fetch(vec!["E".into(), "x".into()]).is_err());
    }
}
