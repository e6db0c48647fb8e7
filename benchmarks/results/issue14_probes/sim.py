import json
TOL=0.0005
def adds(g, se, rule):
    if g is None or g >= TOL: return True
    return rule == "new" and se >= 4*TOL and g + 2*se >= TOL
def final(rounds, rule, patience=2):
    fin, streak = 0, 0
    for x in rounds[1:]:
        if x["p50"] is not None and x["p50"] > x["limit"]: break
        if adds(x["gain"], x["se"] or 0, rule): fin, streak = x["i"], 0
        else:
            streak += 1
            if streak >= patience: break
    return fin
for r in json.load(open('/tmp/i14/adv_rounds.json')):
    print(r['variant'], r['seed'], {rule: (final(r['rounds'], rule), r['rounds'][final(r['rounds'], rule)]['score']['clean']) for rule in ("old","new")})
for r in json.load(open('/tmp/i14/real_rounds.json')):
    print(r['name'], r['seed'], {rule: (final(r['rounds'], rule), round(r['rounds'][final(r['rounds'], rule)]['test_auc'],4)) for rule in ("old","new")})
