import json,sys,re,collections
samples=[]; cur=None
for line in open(sys.argv[1]):
    line=line.rstrip('\n')
    if line.startswith('T '):
        cur={'t':float(line[2:]),'p':{}}; samples.append(cur)
    elif line:
        parts=line.split('\t',2)
        if len(parts)<3: continue
        pid,cpu,cmd=parts; cur['p'][pid]=(float(cpu),cmd)
def group(cmd):
    if 'temporal' in cmd and 'server' in cmd: return 'temporal'
    if 'postgres' in cmd: return 'postgres'
    if 'api-process' in cmd: return 'api-proc'
    if 'bench/run' in cmd or 'run.ts' in cmd: return 'bench(worker+client+loadgen)'
    if 'node' in cmd or 'tsx' in cmd: return 'node-other'
    return 'other'
def at(t):
    # per-group cumulative cpu interpolated: use nearest sample before/after
    import bisect
    ts=[s['t'] for s in samples]; i=bisect.bisect_left(ts,t)
    i=min(max(i,1),len(samples)-1); a,b=samples[i-1],samples[i]
    f=(t-a['t'])/(b['t']-a['t']) if b['t']>a['t'] else 0
    g=collections.Counter()
    pids=set(a['p'])|set(b['p'])
    for pid in pids:
        ca=a['p'].get(pid,(None,None)); cb=b['p'].get(pid,(None,None))
        cmd=cb[1] or ca[1] or ""
        va=ca[0] if ca[0] is not None else 0.0; vb=cb[0] if cb[0] is not None else va
        g[group(cmd)]+=va+(vb-va)*f
    return g
res=json.load(open(sys.argv[2]))['result']
tot=collections.defaultdict(collections.Counter); n=collections.Counter(); secs=collections.Counter()
for w in res['windows']:
    a=at(w['from']/1000); b=at(w['to']/1000)
    for k in set(a)|set(b): tot[w['side']][k]+=b[k]-a[k]
    n[w['side']]+=1; secs[w['side']]+=(w['to']-w['from'])/1000
reqs=float(sys.argv[3]) if len(sys.argv)>3 else 1000
for side in tot:
    total=sum(tot[side].values())
    print(side, 'windows',n[side],'sec',round(secs[side],1),'CPU ms/request', {k:round(v*1000/(n[side]*reqs),2) for k,v in sorted(tot[side].items()) if abs(v)>0.01}, 'total', round(total*1000/(n[side]*reqs),2))
print('--- loop portion only: CPU cores busy (sum over groups) and per group')
for w in res['windows']:
    a=at(w['from']/1000); b=at(w['loopEnd']/1000); d=(w['loopEnd']-w['from'])/1000
    c=at(w['to']/1000); dd=(w['to']-w['loopEnd'])/1000
    print(w['side'], 'loop', round(d,1),'s cores', round(sum(b[k]-a[k] for k in b)/d,2), {k:round((b[k]-a[k])/d,2) for k in b if (b[k]-a[k])/d>0.03}, '| drain', round(dd,1),'s cores', round(sum(c[k]-b[k] for k in c)/max(dd,0.01),2))
