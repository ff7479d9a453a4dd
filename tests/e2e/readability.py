"""What a person could not read on a page, measured from the page's own layout (issue #14).

    from readability import unreadable_texts
    problems = unreadable_texts(page)    # Playwright page -> list of sentences, [] when all reads

Three kinds of problem, each measured from the DOM, never from pixels:

- inside every Plotly chart, two text boxes that overlap (a title over a tick label, two tick
  labels run together): their getBoundingClientRect boxes cross by more than a sliver;
- a chart's text that runs outside its chart or outside the window (cut off, or on top of the
  next element);
- any text on the page that the browser cuts with an ellipsis: an element with
  `text-overflow: ellipsis` whose content is wider than its box (scrollWidth > clientWidth),
  or a line-clamped block whose content is taller than its box. Streamlit does this to metric
  values ("0.…"), widget labels, selectboxes' values and buttons that do not fit.

Each sentence names where the text is (the chart's Streamlit key or its title, else its
position on the page) and the text itself, so that a test can name a known case exactly.
"""

from __future__ import annotations

# Tolerances, in CSS pixels. Text boxes are a line's full height (ascenders, descenders and
# the line's leading), so two rows of labels that merely touch have boxes that cross by a pixel
# or two while their letters are well apart: a crossing counts once it is over a quarter of the
# shorter box's height and more than a pixel wide.
OVERLAP_HEIGHT_SHARE = 0.25
OVERLAP_MIN_WIDTH = 1.0
# Plotly places text on whole pixels and a chart's box can be fractional.
OUTSIDE_SLACK = 2.0
# Below this a Plotly text is deliberately invisible (a slider's ticks shrunk to nothing).
SMALLEST_READABLE_FONT = 4.0

_MEASURE = r"""
([overlapShare, overlapMinWidth, slack, smallestFont]) => {
  const problems = [];
  const short = s => { s = s.replace(/[\u200b\s]+/g, ' ').trim();
                       return s.length > 60 ? s.slice(0, 59) + '…' : s; };
  const shown = el => {
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const st = getComputedStyle(e);
      if (st.display === 'none' || st.visibility === 'hidden' || parseFloat(st.opacity) === 0)
        return false;
    }
    return true;
  };
  const winW = window.innerWidth, winH = window.innerHeight;

  // -- charts: where each is, then its text boxes --------------------------------------------
  document.querySelectorAll('.js-plotly-plot').forEach((chart, index) => {
    const box = chart.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || !shown(chart)) return;
    const keyed = chart.closest('[class*="st-key-"]');
    const key = keyed && [...keyed.classList].find(c => c.startsWith('st-key-'));
    const title = chart.querySelector('.gtitle');
    const name = key ? key.slice(7)
               : title && title.textContent.trim() ? `"${short(title.textContent)}"`
               : `chart ${index + 1}`;
    const texts = [];
    chart.querySelectorAll('text').forEach(t => {
      const words = short(t.textContent || '');
      if (!words || t.closest('.hoverlayer, .modebar-container')) return;
      const r = t.getBoundingClientRect();
      if (r.width < 1 || r.height < 1) return;
      if (parseFloat(getComputedStyle(t).fontSize) < smallestFont || !shown(t)) return;
      texts.push({words, r});
      const left = Math.max(box.left, 0), right = Math.min(box.right, winW);
      if (r.left < left - slack || r.right > right + slack
          || r.top < box.top - slack || r.bottom > box.bottom + slack) {
        const where = r.right > winW + slack || r.left < -slack ? 'the window' : 'its chart';
        problems.push(`${name}: "${words}" runs outside ${where}`);
      }
    });
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i].r, b = texts[j].r;
        const wide = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const high = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (wide > overlapMinWidth && high > overlapShare * Math.min(a.height, b.height))
          problems.push(`${name}: "${texts[i].words}" overlaps "${texts[j].words}"`);
      }
    }
  });

  // -- anywhere: text the browser cuts with an ellipsis or a line clamp ----------------------
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg')) continue;  // chart text is measured above
    const st = getComputedStyle(el);
    const ellipsis = st.textOverflow === 'ellipsis' && st.overflowX !== 'visible'
                     && el.scrollWidth > el.clientWidth + 1;
    const clamp = st.webkitLineClamp && st.webkitLineClamp !== 'none'
                  && el.scrollHeight > el.clientHeight + 1;
    if (!ellipsis && !clamp) continue;
    const words = short(el.innerText || el.textContent || '');
    if (!words || el.getClientRects().length === 0 || !shown(el)) continue;
    const box = el.getBoundingClientRect();  // a folded sidebar: 0 px wide, left of the window
    if (box.width < 1 || box.right <= 0 || box.left >= winW) continue;
    problems.push(`"${words}" is cut by an ellipsis`);
  }
  return [...new Set(problems)];  // an ellipsis inside an ellipsis is one cut text
}
"""


def unreadable_texts(page) -> list[str]:
    """Every text on `page` (a Playwright page) that a person could not read whole, as
    sentences; empty when everything reads."""
    return page.evaluate(_MEASURE, [OVERLAP_HEIGHT_SHARE, OVERLAP_MIN_WIDTH, OUTSIDE_SLACK,
                                    SMALLEST_READABLE_FONT])
