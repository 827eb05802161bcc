import json,sys,math,glob
def load(path):
    f=open(path); h=json.loads(f.readline()); recs=[json.loads(l) for l in f]
    return h,recs
def norm(lp):
    vals=[(-1e30 if v is None else v) for v in lp]; m=max(vals); s=math.log(sum(math.exp(v-m) for v in vals))+m
    return [v-s for v in vals], s
for path in sys.argv[1:]:
    h,recs=load(path); codes=h['codes']; idx={c:i for i,c in enumerate(codes)}
    tot=[];stay=[];move=[];first=[];pstay=[];leave=[];dest=[]
    for r in recs:
        lp,mass=norm(r['log_probs']); ll=-lp[idx[r['truth']]]
        tot.append(ll)
        if r['previous'] is None:
            first.append(ll); continue
        p_stay=math.exp(lp[idx[r['previous']]]); pstay.append(p_stay)
        if r['previous']==r['truth']: stay.append(ll)
        else:
            # a move's log loss = -log P(leave) - log P(destination | leave)
            move.append(ll); p_leave=max(1e-300,1-p_stay)
            leave.append(-math.log(p_leave)); dest.append(ll+math.log(p_leave))
    m=lambda a: sum(a)/max(1,len(a))
    print(f"{h['model']:20s} n={len(tot)} PPL={math.exp(m(tot)):9.2f} ll={m(tot):.3f} first={m(first):.2f}({len(first)}) stay={m(stay):.3f}({len(stay)}) move={m(move):.2f}({len(move)}) =leave {m(leave):.3f} + dest {m(dest):.3f} meanPstay={m(pstay):.3f} max_ll={max(tot):.1f}")
