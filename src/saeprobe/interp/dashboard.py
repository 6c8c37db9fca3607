"""`saeprobe dashboard`: one self-contained HTML page of an SAE's latents.

No external assets: CSS, JavaScript and the data are inline, the histograms are drawn as SVG by
the page's script. A search box filters the latent list by index, explanation or top tokens
(`42`, `question`, `"?"`); clicking a latent shows its firing frequency, its activation
histogram (log-spaced bins), its top-activating examples and its quantile examples with each
token shaded by the latent's activation (hover for the value), and its autointerp explanation
and scores when an autointerp.json is given.

Latents shown: those with autointerp results first, then the most frequent live ones, up to
`max_latents` (default 300, which keeps the page to a few MB).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from saeprobe.errors import DataError, FormatError
from saeprobe.interp.records import Example, LatentRecords
from saeprobe.io_utils import atomic_write_text

N_EXAMPLES = 10


def _autointerp(path: Path | None) -> dict[int, dict[str, Any]]:
    if path is None:
        return {}
    path = path / "autointerp.json" if path.is_dir() else path
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise FormatError(f"{path} is not an autointerp.json; run saeprobe autointerp") from None
    return {
        int(r["latent"]): {
            "explanation": r.get("explanation", ""),
            "scores": r.get("scores", {}),
            "explainer": report.get("explainer"),
        }
        for r in report.get("latents", [])
    }


def _examples(records: LatentRecords, latent: int, kind: str, vocab_ids: dict[str, int]):
    merged = records.examples(latent, "explain", kind) + records.examples(latent, "heldout", kind)
    merged.sort(key=lambda e: -e.value)
    unique: dict[tuple[str, ...], Example] = {}
    for e in merged:  # a corpus may repeat a paragraph; show it once
        unique.setdefault(tuple(e.tokens), e)
    merged = list(unique.values())
    peak = float(records.max_activation[latent]) or 1.0
    out = []
    for e in merged[:N_EXAMPLES]:
        out.append(
            {
                "t": [_intern(t, vocab_ids) for t in e.tokens],
                "a": [int(round(100 * max(a, 0.0) / peak)) for a in e.acts],
                "v": round(e.value, 4),
                "b": e.band,
            }
        )
    return out


def _intern(token: str, table: dict) -> int:
    if token not in table:
        table[token] = len(table)
    return table[token]


def dashboard_data(records: LatentRecords, interp: dict[int, dict], max_latents: int):
    live = records.live
    if not live.size:
        raise DataError(f"the records in {records.path} have no live latents; nothing to show")
    by_freq = live[np.argsort(-records.frequency[live], kind="stable")]
    chosen = [i for i in interp if records.frequency[i] > 0]
    chosen += [int(i) for i in by_freq if int(i) not in interp]
    chosen = sorted(chosen[:max_latents])
    table: dict[str, int] = {}
    edges = records.histogram_edges
    latents = []
    for i in chosen:
        hist = records.histogram[i]
        nz = np.flatnonzero(hist)
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
        entry = {
            "id": int(i),
            "freq": float(records.frequency[i]),
            "max": float(records.max_activation[i]),
            "hist": {
                "lo": float(edges[lo]),
                "hi": float(edges[hi]),
                "counts": [int(c) for c in hist[lo:hi]],
            },  # fmt: skip
            "top": _examples(records, i, "top", table),
            "quantile": _examples(records, i, "quantile", table),
        }
        if i in interp:
            entry["interp"] = interp[i]
        latents.append(entry)
    vocab = [""] * len(table)
    for token, k in table.items():
        vocab[k] = token
    meta = records.meta
    return {
        "title": f"{meta['sae']['architecture']} SAE {Path(meta['sae']['path']).name}",
        "sae": meta["sae"],
        "store": meta["store"],
        "n_tokens": meta["n_tokens"],
        "counts": meta["counts"],
        "shown": len(latents),
        "vocab": vocab,
        "latents": latents,
    }


_CSS = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;color:#222}
header{padding:10px 16px;background:#1f3b57;color:#fff}header h1{font-size:18px;margin:0}
header p{margin:4px 0 0;font-size:13px;opacity:.85}
main{display:flex;height:calc(100vh - 64px)}
#side{width:300px;border-right:1px solid #ddd;display:flex;flex-direction:column}
#search{margin:8px;padding:6px;font-size:14px}
#list{overflow-y:auto;flex:1;margin:0;padding:0;list-style:none;font-size:13px}
#list li{padding:4px 10px;cursor:pointer;border-bottom:1px solid #f0f0f0}
#list li:hover,#list li.sel{background:#e8f0fa}#list .f{color:#777;float:right}
#detail{flex:1;overflow-y:auto;padding:12px 20px}
.ex{font-family:monospace;font-size:13px;margin:3px 0;white-space:pre-wrap;line-height:1.6}
.ex .v{color:#777;display:inline-block;width:70px}.tok{border-radius:2px}
.interp{background:#f7f7e8;padding:8px;border-left:3px solid #cc3}
h2{font-size:16px;margin:16px 0 6px}#count{font-size:12px;color:#666;margin:0 10px 6px}
"""

_JS = r"""
(function(){
  const data = JSON.parse(document.getElementById('data').textContent);
  const list = document.getElementById('list'), detail = document.getElementById('detail');
  const search = document.getElementById('search'), count = document.getElementById('count');
  const esc = s => s.replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
  const tokText = t => data.vocab[t];
  function topTokens(l){
    const seen = [];
    for (const e of l.top){ let best=0; e.a.forEach((a,i)=>{ if(a>e.a[best]) best=i; });
      const t = tokText(e.t[best]); if (t !== undefined && !seen.includes(t)) seen.push(t); }
    return seen.slice(0, 5);
  }
  data.latents.forEach(l => {
    const words = [String(l.id), l.interp ? l.interp.explanation : ''].concat(topTokens(l));
    l.haystack = words.join(' ').toLowerCase();
  });
  function example(e){
    const spans = e.t.map((t,i) => {
      const a = e.a[i], txt = esc(tokText(t).replace(/\n/g,'\u21b5'));
      return '<span class="tok" title="'+(a/100*currentMax).toPrecision(3)+'" style="background:rgba(255,120,0,'+(a/100).toFixed(2)+')">'+txt+'</span>';
    }).join('');
    return '<div class="ex"><span class="v">'+e.v.toPrecision(3)+'</span>'+spans+'</div>';
  }
  let currentMax = 1;
  function histogram(h){
    const n = h.counts.length; if (!n) return '<p>no firing activations</p>';
    const w = 420, ht = 90, bw = w / n, m = Math.max.apply(null, h.counts);
    const bars = h.counts.map((c,i) => '<rect x="'+(i*bw).toFixed(1)+'" y="'+(ht-c/m*ht).toFixed(1)+'" width="'+Math.max(bw-1,1).toFixed(1)+'" height="'+(c/m*ht).toFixed(1)+'" fill="#4a7fb0"><title>'+c+'</title></rect>').join('');
    return '<svg width="'+w+'" height="'+(ht+18)+'" role="img">'+bars+'<text x="0" y="'+(ht+14)+'" font-size="11">'+h.lo.toPrecision(2)+'</text><text x="'+(w-40)+'" y="'+(ht+14)+'" font-size="11">'+h.hi.toPrecision(2)+'</text></svg>';
  }
  function show(l){
    currentMax = l.max || 1;
    document.querySelectorAll('#list li').forEach(li => li.classList.toggle('sel', li.dataset.id == l.id));
    let out = '<h1 id="latent-title">latent '+l.id+'</h1>';
    out += '<p>fires on '+(100*l.freq).toPrecision(3)+' % of tokens; max activation '+l.max.toPrecision(3)+'</p>';
    if (l.interp){
      const sc = Object.entries(l.interp.scores||{}).map(([k,v]) => k+' '+(v===null?'n/a':v.toFixed(3))).join(', ');
      out += '<div class="interp"><b>'+esc(l.interp.explainer||'explanation')+':</b> <span id="explanation">'+esc(l.interp.explanation||'(none)')+'</span><br>'+esc(sc)+'</div>';
    }
    out += '<h2>activation histogram (log-spaced bins)</h2>'+histogram(l.hist);
    out += '<h2>top-activating examples</h2>'+l.top.map(example).join('');
    out += '<h2>quantile examples</h2>'+l.quantile.map(example).join('');
    detail.innerHTML = out;
  }
  function render(){
    const q = search.value.trim().toLowerCase();
    const hits = data.latents.filter(l => !q || l.haystack.includes(q));
    list.innerHTML = hits.map(l => '<li data-id="'+l.id+'">latent '+l.id+'<span class="f">'+(100*l.freq).toPrecision(2)+'%</span>'+(l.interp ? '<br><small>'+esc(l.interp.explanation||'')+'</small>' : '')+'</li>').join('');
    count.textContent = hits.length+' of '+data.latents.length+' latents';
    list.querySelectorAll('li').forEach(li => li.addEventListener('click', () => show(data.latents.find(l => l.id == li.dataset.id))));
    if (hits.length) show(hits[0]); else detail.innerHTML = '<p>no latent matches</p>';
  }
  search.addEventListener('input', render);
  render();
})();
"""


def render_dashboard(data: dict[str, Any]) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    c = data["counts"]
    subtitle = (
        f"{data['store']['model']} layer {data['store']['layer']} · {data['n_tokens']:,} tokens · "
        f"{c['live']} live, {c['dead']} dead latents · {data['shown']} shown"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(data['title'])}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(data['title'])}</h1><p>{html.escape(subtitle)}</p></header>"
        "<main><div id='side'><input id='search' type='search' placeholder='search latents: "
        "index, explanation, token' aria-label='search latents'><div id='count'></div>"
        "<ul id='list'></ul></div><div id='detail'></div></main>"
        f"<script type='application/json' id='data'>{payload}</script>"
        f"<script>{_JS}</script></body></html>\n"
    )


def write_dashboard(
    latents: str | Path,
    out: str | Path,
    autointerp: str | Path | None = None,
    max_latents: int = 300,
) -> Path:
    records = LatentRecords(latents)
    interp = _autointerp(Path(autointerp) if autointerp else None)
    out = Path(out)
    atomic_write_text(out, render_dashboard(dashboard_data(records, interp, max_latents)))
    return out
