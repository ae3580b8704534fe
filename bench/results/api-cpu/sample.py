import os,time,sys
out=open(sys.argv[1],'w')
hz=os.sysconf('SC_CLK_TCK')
while True:
    t=time.time(); rows=[]
    for p in os.listdir('/proc'):
        if not p.isdigit(): continue
        try:
            st=open(f'/proc/{p}/stat').read(); cmd=open(f'/proc/{p}/cmdline').read().replace('\0',' ')[:120]
        except Exception: continue
        f=st[st.rfind(')')+2:].split()
        cpu=(int(f[11])+int(f[12]))/hz
        if cpu>0.05: rows.append(f"{p}\t{cpu:.2f}\t{cmd}")
    out.write(f"T {t:.2f}\n"+"\n".join(rows)+"\n"); out.flush()
    time.sleep(2)
