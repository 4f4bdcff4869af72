# Server CPU per delivery from a wsload raw.jsonl: the server CPU seconds of all
# repetitions over all their deliveries (wsload counts CPU in 10 ms ticks; summing the
# repetitions makes that finer). Usage: python3 cpu.py native.jsonl
import collections, json, sys

d = collections.defaultdict(lambda: [0.0, 0, []])
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["mode"] != "fanout":
        continue
    bench, peer, _ = r["label"].split("/")
    s = d[(bench, peer)]
    s[0] += r["usage"]["server_cpu_secs"]
    s[1] += r["deliveries_received"]
    s[2].append(round(r["usage"]["server_cpu_secs"] / r["deliveries_received"] * 1e6, 2))
for (bench, peer), (cpu, n, per) in sorted(d.items()):
    print(f"{bench:13} {peer:15} {cpu:6.2f} s / {n} deliveries = {cpu / n * 1e6:.3f} us each; per repetition {sorted(per)}")
