// The animated charts' player in the browser: plotly.js's own animation, driven from here so
// that steps, playing, speed and links never wait for the server. Installed once per browser
// document by ui/animation.py (which fills in CONFIG); see that module for the whole story.
//
// - Keys: ←/→ one step, Space play/pause, Home/End first/last step, PageUp/PageDown previous/
//   next step, or the tour's previous/next where the page has tour buttons. Keys typed into a
//   field are the field's. No other key pauses playback.
// - ▶ Play plays at the visitor's speed, timed by the clock (a slow machine skips steps rather
//   than slowing down), from the cursor to the last step, or to a step asked for.
// - A redraw of the same view (a rerun that changed something else, Streamlit's fullscreen)
//   keeps the cursor where the visitor left it, and gets its frames back.
// - Whatever plays is paused before a press that reruns the page, and no animation outlives
//   its chart.
(function () {
  const win = window.parent && window.parent.document ? window.parent : window;
  const doc = win.document;
  if (doc.__gatescopePlayer) { return; }
  const CONFIG = __CONFIG__;
  const P = doc.__gatescopePlayer = {
    speed: null,          // ▶ Play's steps per second, for every chart of this document
    memory: {},           // chart key -> {t0, steps, t}: the visitor's cursor per view
    saved: {},            // chart key -> {frames, steps, traces}: to give a redraw its frames
    loops: new Map(),     // chart div -> the in-browser playback running on it
    starting: new Map(),  // chart div -> the timer of a ▶ Play press about to start a playback
    pointed: null,        // the animated chart last pressed, which keys then drive
  };
  // Streamlit button key -> [chart key, steps]: filled by ui/animation.py's step_buttons, whose
  // script may run before this one
  P.stepButtons = doc.__gatescopeStepButtons = doc.__gatescopeStepButtons || {};

  // --- the chart and its cursor ---------------------------------------------------------------
  // The layout's meta, which the page sends as JSON text (core/figures/style.py `redrawable`:
  // plotly.js compares text by value, and a new meta object made it redraw the whole figure);
  // parsed once per figure. A figure made elsewhere may carry it as an object.
  const layoutMeta = gd => {
    const meta = gd && gd.layout && gd.layout.meta;
    if (typeof meta !== 'string') { return meta || null; }
    if (gd.__gatescopeMetaText !== meta) {
      let parsed = null;
      try { parsed = JSON.parse(meta); } catch (e) { parsed = null; }
      gd.__gatescopeMeta = parsed;
      gd.__gatescopeMetaText = meta;
    }
    return gd.__gatescopeMeta;
  };
  const metaOf = gd => { const meta = layoutMeta(gd); return meta && meta[CONFIG.metaKey]; };
  const isAnimated = gd => !!(gd && gd.isConnected && metaOf(gd) && gd._transitionData);
  const chartKey = gd => {
    const box = gd.closest('[class*="st-key-"]');
    const found = box && [...box.classList].find(c => c.startsWith('st-key-'));
    return found ? found.slice('st-key-'.length) : '';
  };
  const chartOf = key => doc.querySelector(`.st-key-${key} .js-plotly-plot`);
  const steps = gd => metaOf(gd).steps;
  const cursorOf = gd => {
    const trace = (gd._fullData || []).find(t => t.yaxis === CONFIG.cursorAxis);
    const t = trace ? Number(trace.x[0]) : 0;
    return Number.isFinite(t) ? t : 0;
  };
  const hasFrame = (gd, t) => !!(gd._transitionData && gd._transitionData._frameHash
                                 && gd._transitionData._frameHash[String(t)]);
  const buttonsOf = gd => gd.querySelectorAll('.updatemenu-button');
  // Playing: our playback (or a ▶ Play press about to start it), or plotly.js's own (Slow,
  // ×10) with steps still to show; not the moment plotly.js takes to show one step.
  const playing = gd => {
    const state = gd._transitionData;
    return P.loops.has(gd) || P.starting.has(gd)
      || !!(state && state._animationRaf && state._frameQueue && state._frameQueue.length);
  };
  const press = (gd, index) => {
    const button = buttonsOf(gd)[index];
    if (button) { button.dispatchEvent(new MouseEvent('click', {bubbles: true})); }
  };
  // Every press (Play's loop, Pause, a step) settles plotly.js's promise of the animation it
  // replaces; an interrupted one rejects without a reason, which is not a fault.
  const quiet = promise => { if (promise && promise.catch) { promise.catch(() => {}); } };

  // Show step t now. `hold` ms: how long plotly.js's own loop waits after it (a playback keeps
  // that loop alive between its steps, so that the chart counts as playing everywhere).
  const animateTo = (gd, t, hold) => quiet(win.Plotly.animate(gd, [String(t)], {
    mode: 'immediate', frame: {duration: hold, redraw: false}, transition: {duration: 0}}));
  const stopPlotlyLoop = state => {
    if (state && state._animationRaf) {
      win.cancelAnimationFrame(state._animationRaf);
      state._animationRaf = null;
      state._frameQueue = [];
    }
  };

  // --- playback timed by the clock ------------------------------------------------------------
  const HOLD = 1e9;
  const stopLoop = gd => {
    // a press that stops playback also stops a ▶ Play pressed just before it from starting
    // one (a quick Space, Space: the second key came before the first's hand-over)
    clearTimeout(P.starting.get(gd));
    P.starting.delete(gd);
    if (!P.loops.has(gd)) { return; }
    P.loops.delete(gd);
    stopPlotlyLoop(gd._transitionData);
  };
  // Play from the cursor to step `to` (from the first step to the last when undefined and the
  // cursor is on the last already), at P.speed.
  const play = (gd, to) => {
    stopLoop(gd);
    const last = steps(gd) - 1;
    if (last < 1) { return; }
    let from = Math.min(cursorOf(gd), last);
    if (to === undefined) {
      to = last;
      if (from === last) { from = 0; }
    }
    to = Math.max(0, Math.min(last, to));
    if (to === from) { return; }
    const loop = {from, to, way: Math.sign(to - from), anchorT: from, anchorAt: performance.now(),
                  shown: from, stops: stopsOf(gd)};
    P.loops.set(gd, loop);
    stopPlotlyLoop(gd._transitionData);  // plotly.js's own Play, which took the first step
    animateTo(gd, from, HOLD);  // playing from now on, also for the guard and the tests
    const tick = () => {
      if (P.loops.get(gd) !== loop) { return; }
      const state = gd._transitionData;
      if (!gd.isConnected || !state) { P.loops.delete(gd); return; }
      // (requestAnimationFrame's own time stamp may be earlier than the anchor)
      const elapsed = Math.max(0, performance.now() - loop.anchorAt) / 1000;
      let t = loop.anchorT + loop.way * Math.floor(elapsed * P.speed + 1e-9);
      if (loop.way * (t - loop.to) >= 0) { t = loop.to; }
      // plotly.js moves the slider only on a step that is one of its stops: a playback that
      // skips steps (a busy machine, a high speed) would pass them all and leave the slider
      // behind, so a stop passed is the step shown (the next frame catches up with the clock)
      const passed = loop.stops.filter(s => loop.way * (s - loop.shown) > 0
                                            && loop.way * (t - s) >= 0);
      if (passed.length) { t = loop.way > 0 ? Math.max(...passed) : Math.min(...passed); }
      // one step at a time through plotly.js's queue: if the last is not drawn yet, wait
      if (t !== loop.shown && !(state._frameQueue && state._frameQueue.length)) {
        if (!hasFrame(gd, t)) { stopLoop(gd); return; }
        loop.shown = t;
        if (t === loop.to) {  // the last step: plotly.js's loop ends after it by itself
          P.loops.delete(gd);
          animateTo(gd, t, 0);
          return;
        }
        animateTo(gd, t, HOLD);
      }
      win.requestAnimationFrame(tick);
    };
    win.requestAnimationFrame(tick);
  };
  // A new speed applies from the step on screen, with no jump.
  const retime = () => P.loops.forEach(loop => {
    loop.anchorT = loop.shown;
    loop.anchorAt = performance.now();
  });
  // Go to step t (clamped), paused.
  const show = (gd, t) => {
    if (playing(gd)) { press(gd, 1); }
    const target = Math.max(0, Math.min(steps(gd) - 1, t));
    if (hasFrame(gd, target)) { animateTo(gd, target, 0); }
  };

  // --- every new figure: its frames, the visitor's cursor, the readout --------------------------
  // The slider has at most 50 stops; between them its readout would lag the cursor, so it says
  // the cursor's own step.
  const readout = (gd, t) => {
    const slider = gd._fullLayout && gd._fullLayout.sliders && gd._fullLayout.sliders[0];
    const prefix = slider && slider.currentvalue && slider.currentvalue.prefix;
    if (!prefix) { return; }
    const label = [...gd.querySelectorAll('.slider-container text')]
      .find(e => e.textContent.startsWith(prefix));
    if (label) { label.textContent = prefix + t; }
  };
  const stopsOf = gd => {
    const slider = gd._fullLayout && gd._fullLayout.sliders && gd._fullLayout.sliders[0];
    return slider ? slider.steps.map(step => Number(step.label)) : [];
  };
  const listen = gd => {
    if (!gd.__gatescopeOnFrame) {
      gd.__gatescopeOnFrame = event => {
        const t = Number(event && event.name);
        const memory = P.memory[chartKey(gd)];
        if (Number.isFinite(t)) {
          if (memory) { memory.t = t; }
          readout(gd, t);
        }
      };
      gd.__gatescopeOnSlider = () => stopLoop(gd);  // a scrub takes over from a playback
    }
    const listening = gd._ev && gd._ev.listeners
      ? gd._ev.listeners('plotly_animatingframe').includes(gd.__gatescopeOnFrame) : false;
    if (!listening) {
      gd.on('plotly_animatingframe', gd.__gatescopeOnFrame);
      gd.on('plotly_sliderstart', gd.__gatescopeOnSlider);
    }
  };
  // Whether a chart's memory is of the view `meta` draws (the same start step and length, and
  // the same tour step: a tour's next step opens as its link does).
  const remembers = (memory, meta) => !!memory && memory.t0 === meta.t0
    && memory.steps === meta.steps && memory.view === (meta.view || '');
  const arrived = gd => {
    const key = chartKey(gd), meta = metaOf(gd), state = gd._transitionData;
    listen(gd);
    const frames = state._frames || [];
    const saved = P.saved[key];
    let ready = Promise.resolve();
    if (frames.length) {
      P.saved[key] = {frames: frames.slice(), steps: meta.steps, traces: gd.data.length};
    } else if (saved && saved.steps === meta.steps && saved.traces === gd.data.length) {
      // Streamlit's fullscreen draws the chart again without its frames: ▶ Play then did
      // nothing, in fullscreen and after it.
      ready = win.Plotly.addFrames(gd, saved.frames);
    }
    const memory = P.memory[key];
    if (remembers(memory, meta)) {
      // the same start step and length: another choice changed, or the same view was drawn
      // again; the cursor stays where the visitor left it
      ready.then(() => {
        if (gd.isConnected && cursorOf(gd) !== memory.t && hasFrame(gd, memory.t)) {
          animateTo(gd, memory.t, 0);
        }
      });
    } else {
      P.memory[key] = {t0: meta.t0, steps: meta.steps, view: meta.view || '', t: cursorOf(gd)};
    }
  };

  // --- the guard: pause before a rerun, and no animation outlives its chart --------------------
  // plotly.js runs an animation as a requestAnimationFrame loop bound to the figure's state at
  // the moment it started. Streamlit replacing the figure (a rerun, its own second render, its
  // fullscreen) orphans that loop: it keeps moving the chart, but Pause, which acts on the new
  // state, no longer stops it; Streamlit removing the chart makes it throw on every frame
  // ("Cannot set properties of undefined (setting '_currentFrame')"). So a watchdog stops any
  // loop whose chart was removed or whose figure was replaced, and the presses that rerun the
  // page pause first.
  const charts = new Map();  // chart div -> every animation state it has had
  const watch = () => {
    doc.querySelectorAll('.js-plotly-plot').forEach(gd => {
      if (!charts.has(gd)) { charts.set(gd, new Set()); }
      const state = gd._transitionData;
      if (state) { charts.get(gd).add(state); }
      if (state && isAnimated(gd) && (gd.__gatescopeState !== state
                                      || gd.__gatescopeData !== gd.data)) {
        gd.__gatescopeState = state;
        gd.__gatescopeData = gd.data;
        arrived(gd);
      }
    });
    charts.forEach((states, gd) => {
      const current = gd.isConnected ? gd._transitionData : null;
      states.forEach(state => {
        if (state !== current) { stopPlotlyLoop(state); states.delete(state); }
      });
      if (!gd.isConnected) { charts.delete(gd); P.loops.delete(gd); }
    });
    doc.querySelectorAll('.gatescope-player').forEach(setUpToolbar);
  };

  const pauseAll = () => doc.querySelectorAll('.js-plotly-plot').forEach(gd => {
    if (isAnimated(gd) && playing(gd)) { press(gd, 1); }
  });
  const OWN = '.js-plotly-plot, [data-testid="stExpander"], .gatescope-player';
  // A press anywhere but on the charts, the explanations and the player's own controls may
  // rerun the page (every rerun starts with one).
  doc.addEventListener('pointerdown', event => {
    const target = event.target;
    if (!(target instanceof Element)) { return; }
    const gd = target.closest('.js-plotly-plot');
    if (isAnimated(gd)) { P.pointed = gd; }
    if (target.closest(OWN)) { return; }
    doc.__gatescopeTouched = true;  // from now on, no autoplay: the visitor is in charge
    pauseAll();
  }, true);
  const editable = target => target instanceof Element && !!target.closest(
    'input, textarea, select, [contenteditable=""], [contenteditable="true"], [role="slider"], '
    + '[role="combobox"], [role="listbox"], [role="spinbutton"], [role="textbox"]');
  // Typing into a field is an edit that reruns the page; a key anywhere else is not.
  doc.addEventListener('keydown', event => {
    if (editable(event.target) && !event.target.closest('.gatescope-player')) {
      doc.__gatescopeTouched = true;
      pauseAll();
    }
  }, true);

  // --- the chart's own buttons ----------------------------------------------------------------
  // Any of them ends an in-browser playback. ▶ Play then plays at the visitor's speed: plotly.js's
  // own Play takes the first step (and marks the button, as for the others), from the cursor
  // (it started from step 0 on a figure it had not played yet: a link's t was lost), and the
  // player goes on from there. (Marking the button from here would cost a relayout: 0.2 s at
  // T=1000.)
  doc.addEventListener('click', event => {
    const button = event.target instanceof Element && event.target.closest('.updatemenu-button');
    const gd = button && button.closest('.js-plotly-plot');
    if (!isAnimated(gd)) { return; }
    if (event.isTrusted) {  // the visitor's, not the landing view's autoplay
      doc.__gatescopeTouched = true;
      P.pointed = gd;
    }
    stopLoop(gd);
    if ([...buttonsOf(gd)].indexOf(button) !== 0) { return; }
    gd._fullLayout._currentFrame = String(cursorOf(gd));
    P.starting.set(gd, setTimeout(() => {
      P.starting.delete(gd);
      if (isAnimated(gd)) { play(gd); }
    }, 0));
  }, true);

  // --- keys --------------------------------------------------------------------------------------
  const KEYS = {ArrowLeft: 'back', ArrowRight: 'next', PageUp: 'back', PageDown: 'next',
                Home: 'first', End: 'last', ' ': 'toggle', Spacebar: 'toggle'};
  const targetChart = () => {
    const animated = [...doc.querySelectorAll('.js-plotly-plot')].filter(isAnimated);
    if (P.pointed && animated.includes(P.pointed)) { return P.pointed; }
    const height = win.innerHeight;
    const seen = gd => {
      const r = gd.getBoundingClientRect();
      return Math.max(0, Math.min(r.bottom, height) - Math.max(r.top, 0));
    };
    return animated.sort((a, b) => seen(b) - seen(a))[0] || null;
  };
  // From the step last asked for: presses quicker than the frames (a key held down, a hurried
  // hand) each count, also while plotly.js has not drawn the one before. Past the queue, from
  // the step the chart's memory holds: plotly.js names a frame as it takes it from the queue
  // but moves the cursor a moment later, and Streamlit's second draw of a new chart puts the
  // cursor back at the figure's start until the player restores it. A press in either moment
  // counted from the cursor drawn: on a busy machine presses were lost (the suite under load),
  // and a press as Streamlit drew again took the cursor from step 25 to 11, the start step's
  // next.
  const stepBy = (gd, delta) => {
    const queue = (gd._transitionData && gd._transitionData._frameQueue) || [];
    const asked = queue.length ? Number(queue[queue.length - 1].name) : NaN;
    const memory = P.memory[chartKey(gd)];
    const kept = remembers(memory, metaOf(gd)) && hasFrame(gd, memory.t) ? memory.t : cursorOf(gd);
    const from = P.loops.has(gd) ? P.loops.get(gd).shown : Number.isFinite(asked) ? asked : kept;
    show(gd, from + delta);
  };
  const keyAction = (gd, action) => {
    doc.__gatescopeTouched = true;
    if (action === 'toggle') { press(gd, playing(gd) ? 1 : 0); }
    else if (action === 'back') { stepBy(gd, -1); }
    else if (action === 'next') { stepBy(gd, 1); }
    else if (action === 'first') { show(gd, 0); }
    else if (action === 'last') { show(gd, steps(gd) - 1); }
  };
  doc.addEventListener('keydown', event => {
    const action = KEYS[event.key];
    if (!action || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) { return; }
    const target = event.target;
    if (editable(target) || (target instanceof Element && target.closest('[role="dialog"]'))) {
      return;
    }
    // Space presses whatever button has the focus, as everywhere
    if (action === 'toggle' && target instanceof Element && target.closest(
      'button, summary, [role="button"], [role="checkbox"], [role="switch"], '
      + '[role="tab"], [role="radio"], [role="option"], [role="menuitem"]')) { return; }
    if (event.key === 'PageUp' || event.key === 'PageDown') {
      // in a tour, a clicker's PageDown is the tour's "next"
      const next = doc.querySelector('.st-key-tour_next button');
      const back = doc.querySelector('.st-key-tour_prev button');
      if (next || back) {
        event.preventDefault();
        const button = event.key === 'PageDown' ? next : back;
        if (button && !button.disabled) {
          doc.__gatescopeTouched = true;
          pauseAll();  // as a press on it would: it reruns the page
          button.click();
        }
        return;
      }
    }
    const gd = targetChart();
    if (!gd) { return; }
    event.preventDefault();  // no page scroll for Space, Page keys, Home and End
    keyAction(gd, action);
  });

  // --- the sidebar's step buttons: steps in the browser, not a rerun ---------------------------
  doc.addEventListener('click', event => {
    if (!(event.target instanceof Element)) { return; }
    for (const [buttonKey, [key, delta]] of Object.entries(P.stepButtons)) {
      const button = event.target.closest(`.st-key-${buttonKey} button`);
      if (!button) { continue; }
      const gd = chartOf(key);
      if (!isAnimated(gd)) { return; }  // no chart drawn: the button does it the slow way
      event.preventDefault();
      event.stopPropagation();
      doc.__gatescopeTouched = true;
      stepBy(gd, delta);
      button.blur();  // so that Space plays and pauses rather than pressing it again
      return;
    }
  }, true);

  // --- the player's controls: speed, play to a step, copy a link -----------------------------
  const spread = Math.log(CONFIG.speedMax / CONFIG.speedMin);
  const speedAt = position => CONFIG.speedMin * Math.exp(spread * position / 1000);
  const positionOf = speed => Math.round(1000 * Math.log(speed / CONFIG.speedMin) / spread);
  const rounded = speed => speed < 10 ? Math.round(speed * 10) / 10 : Math.round(speed);
  const speedText = speed => `${rounded(speed)} steps/s`;
  const showSpeed = () => doc.querySelectorAll('.gatescope-player').forEach(bar => {
    const range = bar.querySelector('.gs-speed');
    if (range && Number(range.value) !== positionOf(P.speed)) {
      range.value = String(positionOf(P.speed));
    }
    const value = bar.querySelector('.gs-speed-value');
    if (value) { value.textContent = speedText(P.speed); }
  });
  const setSpeed = speed => {
    P.speed = Math.max(CONFIG.speedMin, Math.min(CONFIG.speedMax, speed));
    retime();
    showSpeed();
  };
  const setUpToolbar = bar => {
    if (P.speed === null) { P.speed = Number(bar.dataset.speed) || CONFIG.speedDefault; }
    const gd = chartOf(bar.dataset.chart);
    const to = bar.querySelector('.gs-to');
    if (to && isAnimated(gd)) {
      const last = String(steps(gd) - 1);
      if (to.max !== last) { to.max = last; to.value = last; }
    }
    if (bar.__gatescopeReady) { return; }
    bar.__gatescopeReady = true;
    showSpeed();
  };
  const linkTo = gd => {
    const url = new URL(win.location.href);
    url.searchParams.set('t', String(cursorOf(gd)));  // also t=0: a link never autoplays
    const speed = rounded(P.speed);
    if (speed === CONFIG.speedDefault) { url.searchParams.delete(CONFIG.speedParam); }
    else { url.searchParams.set(CONFIG.speedParam, String(speed)); }
    return url.toString();
  };
  const copyLink = async (bar, gd) => {
    const link = linkTo(gd);
    const box = bar.querySelector('.gs-link');
    const text = bar.querySelector('.gs-link-text');
    const status = bar.querySelector('.gs-link-status');
    text.value = link;
    box.hidden = false;
    let copied = false;
    try {
      await win.navigator.clipboard.writeText(link);
      copied = true;
    } catch (error) {  // no clipboard (a page served over plain http), or not allowed
      text.focus();
      text.select();
      try { copied = doc.execCommand('copy'); } catch (ignored) { copied = false; }
    }
    status.textContent = copied ? 'Copied:' : 'Copy this link (Ctrl+C):';
    if (copied) { text.blur(); }
    else { text.focus(); text.select(); }
  };
  doc.addEventListener('input', event => {
    const range = event.target instanceof Element && event.target.closest('.gatescope-player .gs-speed');
    if (range) { setSpeed(speedAt(Number(range.value))); }
  });
  // The step asked for, within the chart's steps (the field shows where it will stop); an empty
  // field (or text a number field refuses, which reads as empty) asks for nothing.
  const playTo = bar => {
    const gd = chartOf(bar.dataset.chart);
    const field = bar.querySelector('.gs-to');
    if (!isAnimated(gd) || field.value.trim() === '' || !Number.isFinite(Number(field.value))) {
      return;
    }
    const to = Math.max(0, Math.min(steps(gd) - 1, Math.round(Number(field.value))));
    field.value = String(to);
    doc.__gatescopeTouched = true;
    if (playing(gd)) { press(gd, 1); }
    play(gd, to);
  };
  doc.addEventListener('click', event => {
    const button = event.target instanceof Element && event.target.closest('.gatescope-player button');
    if (!button) { return; }
    const bar = button.closest('.gatescope-player');
    const gd = chartOf(bar.dataset.chart);
    if (button.classList.contains('gs-play-to')) { playTo(bar); }
    else if (button.classList.contains('gs-copy') && isAnimated(gd)) { copyLink(bar, gd); }
    button.blur();
  });
  doc.addEventListener('keydown', event => {
    const field = event.target instanceof Element && event.target.closest('.gatescope-player .gs-to');
    if (field && event.key === 'Enter') {
      playTo(field.closest('.gatescope-player'));
      field.blur();  // the keys are the chart's again: Space pauses
    }
  });
  // A speed set with the mouse leaves the keys to the chart (a slider with the focus would take
  // the arrows, and Space would do nothing); set with the keyboard, it keeps the focus. The
  // focus goes back as the button is released, wherever that is (a drag may end off the
  // slider), before any key that follows: a blur one task later lost a Space pressed at once.
  let pressedRange = null;
  doc.addEventListener('pointerdown', event => {
    pressedRange = event.target instanceof Element
      && event.target.closest('.gatescope-player .gs-speed');
  }, true);
  doc.addEventListener('pointerup', () => {
    if (pressedRange) { pressedRange.blur(); }
    pressedRange = null;
  }, true);

  // --- what a map reads under the pointer -----------------------------------------------------
  // The maps are images, which plotly.js cannot hover: their values travel in the layout's meta
  // (core/figures/readout.py), rounded as shown, and this box reads the one under the pointer.
  const readoutsOf = gd => {
    const meta = layoutMeta(gd);
    return (meta && meta[CONFIG.readoutKey]) || null;
  };
  const ARRAYS = {int8: Int8Array, int16: Int16Array, int32: Int32Array, float32: Float32Array};
  const decoded = new WeakMap();  // a map's meta entry -> its values
  const valuesOf = map => {
    if (!map.data) { return null; }
    if (!decoded.has(map)) {
      const bytes = Uint8Array.from(atob(map.data), ch => ch.charCodeAt(0));
      decoded.set(map, new ARRAYS[map.dtype](bytes.buffer));
    }
    return decoded.get(map);
  };
  const axisOf = (gd, id) => gd._fullLayout && gd._fullLayout[id.replace(/^([xy])/, '$1axis')];
  // the map, unit and step under the point (px, py) of the chart, in its own px
  const mapAt = (gd, px, py) => {
    for (const sub of readoutsOf(gd) || []) {
      const xa = axisOf(gd, sub.x), ya = axisOf(gd, sub.y);
      if (!xa || !ya || px < xa._offset || px > xa._offset + xa._length
          || py < ya._offset || py > ya._offset + ya._length) { continue; }
      const step = Math.round(xa.p2c(px - xa._offset)), y = ya.p2c(py - ya._offset);
      const map = sub.maps.find(m => y >= m.base - 0.5 && y < m.base + sub.units - 0.5);
      if (map && step >= 0 && step < sub.steps) {
        return {sub, map, step, unit: Math.round(y - map.base)};
      }
    }
    return null;
  };
  const readoutText = ({sub, map, step, unit}) => {
    const values = valuesOf(map);
    const word = sub.tokens[step] ? ` “${sub.tokens[step]}”` : '';
    let value = sub.withheld;
    if (values) {  // written as core/figures/readout.py's `shown` writes it
      const raw = values[unit * sub.steps + step], v = raw / map.scale;
      const missing = map.dtype === 'float32' ? Number.isNaN(raw)
        : raw === -(2 ** (8 * values.BYTES_PER_ELEMENT - 1));
      const text = !Number.isFinite(v) ? (v < 0 ? '−inf' : 'inf')
        : Math.abs(v) >= 1e5 ? v.toExponential(CONFIG.readoutDecimals) : v.toFixed(CONFIG.readoutDecimals);
      value = missing ? 'no value' : Number(text) === 0 ? (0).toFixed(CONFIG.readoutDecimals)
        : text.replace('-', '−');
    }
    return [`${map.name}: ${value}`, `unit ${unit} · step t = ${step}${word}`];
  };
  const readoutBox = gd => {
    const holder = gd.querySelector('.svg-container') || gd;
    let box = holder.querySelector(':scope > .gatescope-readout');
    if (!box) {
      box = doc.createElement('div');
      box.className = 'gatescope-readout';
      box.setAttribute('role', 'status');
      box.style.cssText = 'position:absolute; z-index:10; pointer-events:none; padding:4px 8px;'
        + 'border-radius:4px; background:rgba(17,17,17,0.9); color:#fff; white-space:nowrap;'
        + 'line-height:1.35; font-family:"Open Sans", Arial, sans-serif;';
      holder.appendChild(box);
    }
    return box;
  };
  const hideReadouts = except => doc.querySelectorAll('.gatescope-readout').forEach(box => {
    if (box !== except) { box.style.display = 'none'; }
  });
  doc.addEventListener('pointermove', event => {
    const gd = event.target instanceof Element && event.target.closest('.js-plotly-plot');
    const subs = readoutsOf(gd);
    if (!subs || !subs.length) { hideReadouts(null); return; }
    // presentation mode scales the chart as a whole: back to the chart's own px
    const rect = gd.getBoundingClientRect(), zoom = rect.width / (gd.offsetWidth || rect.width);
    const px = (event.clientX - rect.left) / zoom, py = (event.clientY - rect.top) / zoom;
    const at = mapAt(gd, px, py);
    if (!at) { hideReadouts(null); return; }
    const box = readoutBox(gd);
    hideReadouts(box);
    const [first, second] = readoutText(at);
    box.replaceChildren(doc.createTextNode(first), doc.createElement('br'),
                        doc.createTextNode(second));
    box.style.fontSize = `${subs[0].font}px`;
    box.style.display = 'block';
    // beside the pointer, on whichever side has room
    const right = px + 16 + box.offsetWidth > gd.offsetWidth;
    box.style.left = `${right ? px - 16 - box.offsetWidth : px + 16}px`;
    box.style.top = `${Math.max(0, py - box.offsetHeight - 12)}px`;
  }, {passive: true});
  doc.addEventListener('pointerleave', () => hideReadouts(null));

  new MutationObserver(watch).observe(doc.body, {childList: true, subtree: true});
  setInterval(watch, 100);
  watch();
  // Pausing (or any new animation) interrupts the one that plays, and plotly.js rejects the
  // interrupted animation's promise with no reason, which its own buttons never catch: the
  // browser reported an "Uncaught (in promise) undefined" page error on the first widget press
  // while a chart played. Such a reason-less rejection is plotly.js's interruption, not a fault.
  win.addEventListener('unhandledrejection', event => {
    if (event.reason === undefined) { event.preventDefault(); }
  });
})();
