import sys, datetime, collections
samples=[]; cur=None
for line in open('/tmp/cpu-samples.txt'):
    if line.startswith('T '):
        cur=(float(line.split()[1]), {}); samples.append(cur); continue
    pid,cpu,cmd=line.rstrip('\n').split('\t',2)
    cur[1][pid]=(float(cpu),cmd)
def cat(cmd):
    if 'temporal' in cmd and 'server' in cmd: return 'temporal'
    if cmd.startswith('postgres') or 'postgres:' in cmd: return 'postgres'
    if 'api-process' in cmd: return 'api'
    if 'node' in cmd: return 'node'
    return 'other'
def at(hms):
    d=datetime.datetime.utcfromtimestamp(samples[0][0]).date()
    return datetime.datetime.combine(d, datetime.time.fromisoformat(hms)).replace(tzinfo=datetime.timezone.utc).timestamp()
def win(a,b,label):
    A=min(samples,key=lambda s:abs(s[0]-at(a))); B=min(samples,key=lambda s:abs(s[0]-at(b)))
    dt=B[0]-A[0]; tot=collections.Counter()
    for pid,(c,cmd) in B[1].items():
        c0=A[1].get(pid,(0,cmd))[0]; tot[cat(cmd)]+=c-c0
    print(f"{label:34s} {dt:5.0f}s  " + "  ".join(f"{k} {v/dt:.2f}" for k,v in tot.most_common()) + f"  | total {sum(tot.values())/dt:.2f} cores")
win('06:54:52','06:55:01','baseline half 1 (trivial starts)')
win('06:55:03','06:55:33','list (starts + first tasks)')
win('06:55:35','06:57:15','after list: first-task backlog')
win('06:57:16','06:57:32','decomposition starts')
win('06:57:45','06:59:27','decomposition backlog')
win('06:59:28','06:59:44','baseline half 2')
