"""Sum `perf report` samples by symbol for two servers (run.sh) and list the differences."""
import collections
import json
import re
import sys

out = sys.argv[1]
count = {}
for name in ("bun", "native"):
    c = collections.Counter()
    for line in open(f"{out}/{name}.txt"):
        m = re.match(r"\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+\[.\]\s+(.*)", line)
        if m:
            dso = "kernel" if m.group(3) == "[kernel.kallsyms]" else m.group(3)
            c[(dso, m.group(4).strip()[:80])] += int(m.group(2))
    count[name] = c
    r = json.load(open(f"{out}/{name}.json"))
    print(f"{name}: {int(r['deliveries_per_sec'])} deliveries/s, server {r['usage']['server_cpu_util']} of a core,",
          f"{sum(c.values())} samples ({sum(v for (d, _), v in c.items() if d == 'kernel')} kernel)")
keys = sorted(set(count["bun"]) | set(count["native"]), key=lambda k: count["bun"][k] - count["native"][k])
print("\nsamples native  bun  (native's largest excess first)")
for k in keys[:30]:
    print(f"{count['native'][k]:7d} {count['bun'][k]:5d}  {k[0]}  {k[1]}")
print("\nBun's largest excess")
for k in keys[-12:]:
    print(f"{count['native'][k]:7d} {count['bun'][k]:5d}  {k[0]}  {k[1]}")
