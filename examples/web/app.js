// wschat browser client: speaks the JSON dialect of PROTOCOL.md
// (subprotocol wschat.v1.json) to ws(s)://<host>/chat. No build step.
// Every piece of data from the network reaches the page through
// textContent only; nothing is ever parsed as HTML.
'use strict';
(() => {
  const SUBPROTOCOL = 'wschat.v1.json';
  const STORE_KEY = 'wschat.v1';
  const BACKOFF_MIN = 500;     // ms, doubled per failed attempt...
  const BACKOFF_MAX = 10000;   // ...up to this, then jittered
  const PAGE = 50;             // history page size

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'), nickForm: $('nick-form'), nickInput: $('nick-input'),
    nickError: $('nick-error'), rooms: $('rooms'), joinForm: $('join-form'),
    joinInput: $('join-input'), members: $('members'),
    membersHeading: $('members-heading'), roomTitle: $('room-title'),
    leave: $('leave-button'), messages: $('messages'), error: $('error'),
    compose: $('compose'), text: $('text-input'), send: $('send-button'),
  };

  // ---------------------------------------------------------------- state
  // Per tab (sessionStorage), so a reload resumes: the name the user chose,
  // the rooms joined with the last message id seen in each, the open room.
  const saved = (() => {
    try { return JSON.parse(sessionStorage.getItem(STORE_KEY)) || {}; }
    catch { return {}; }
  })();
  let wantedName = typeof saved.name === 'string' ? saved.name : null;
  let current = typeof saved.current === 'string' ? saved.current : null;
  const rooms = new Map();          // room name -> room state (rooms we want)
  let serverRooms = [];             // last `rooms` reply
  let ws = null;
  let myName = null;
  let limits = null;
  let attempt = 0;
  let retryTimer = null;
  let refSeq = 0;
  const refs = new Map();           // ref -> what the request was
  let seq = 0;                      // arrival order, for stable sorting
  const seenRenames = new Set();
  let roomsTimer = null;

  function roomState(name) {
    let r = rooms.get(name);
    if (!r) {
      r = {
        name, joined: false, items: [], ids: new Set(), lastId: null,
        oldestId: null, floor: null, complete: false, loading: false,
        pending: [], members: [],
      };
      rooms.set(name, r);
    }
    return r;
  }
  if (saved.rooms && typeof saved.rooms === 'object') {
    for (const [name, lastId] of Object.entries(saved.rooms)) {
      roomState(name).lastId = Number.isInteger(lastId) ? lastId : null;
    }
  }
  if (!rooms.size) roomState('lobby');
  if (!rooms.has(current)) current = rooms.keys().next().value;

  function save() {
    const rs = {};
    for (const r of rooms.values()) rs[r.name] = r.lastId;
    try {
      sessionStorage.setItem(STORE_KEY,
        JSON.stringify({ name: wantedName, current, rooms: rs }));
    } catch { /* private mode: no resume, still works */ }
  }

  // ---------------------------------------------------------------- DOM
  function h(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function timeNode(ts) {
    const d = new Date(ts);
    const t = h('time', 'time');
    if (Number.isFinite(ts)) {
      t.dateTime = d.toISOString();
      t.title = d.toLocaleString();
      const sameDay = d.toDateString() === new Date().toDateString();
      t.textContent = (sameDay ? '' : d.toLocaleDateString() + ' ') +
        d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    return t;
  }
  function setStatus(state, text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }
  function showError(text) {
    ui.error.textContent = text || '';
  }

  // A message list item: {kind, ts, id?, seq, node}.
  function itemNode(it) {
    if (it.node) return it.node;
    const li = h('li', it.kind);
    li.append(timeNode(it.ts));
    if (it.kind === 'msg') {
      li.dataset.id = it.id;
      if (it.from === myName) li.classList.add('mine');
      li.append(h('span', 'from', it.from), h('span', 'text', it.text));
    } else if (it.kind === 'whisper') {
      li.append(h('span', 'from', `${it.from} → ${it.to}`),
        h('span', 'text', it.text));
    } else {
      li.append(h('span', 'text', it.text));
    }
    it.node = li;
    return li;
  }
  function compare(a, b) {
    if (a.id != null && b.id != null) return a.id - b.id;
    return (a.ts - b.ts) || (a.seq - b.seq);
  }
  function insertItem(r, it) {
    it.seq = ++seq;
    let i = r.items.length;
    while (i > 0 && compare(r.items[i - 1], it) > 0) i--;
    r.items.splice(i, 0, it);
    if (r.name !== current) return;
    const next = r.items[i + 1];
    ui.messages.insertBefore(itemNode(it), next ? next.node : null);
  }
  // Run fn, then keep the view pinned: to the bottom if it was there,
  // else on the same content (items added above do not move it).
  function keepScroll(fn) {
    const list = ui.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 30;
    const anchor = list.firstElementChild;
    const top = anchor ? anchor.getBoundingClientRect().top : 0;
    fn();
    if (atBottom) list.scrollTop = list.scrollHeight;
    else if (anchor?.isConnected) list.scrollTop += anchor.getBoundingClientRect().top - top;
  }

  function addMessage(r, m) {
    if (!Number.isInteger(m.id) || r.ids.has(m.id)) return;  // dedupe room+id
    r.ids.add(m.id);
    if (r.lastId == null || m.id > r.lastId) r.lastId = m.id;
    if (r.oldestId == null || m.id < r.oldestId) r.oldestId = m.id;
    insertItem(r, { kind: 'msg', id: m.id, ts: m.ts, from: String(m.from),
      text: String(m.text) });
  }
  function addNote(r, kind, text, ts, extra) {
    if (!r) return;
    keepScroll(() => insertItem(r, { kind, ts: ts ?? Date.now(), text, ...extra }));
  }

  function renderRooms() {
    const names = new Map();
    for (const s of serverRooms) names.set(s.room, s.members);
    for (const r of rooms.values()) if (!names.has(r.name)) names.set(r.name, null);
    const sorted = [...names.keys()].sort((a, b) => a.localeCompare(b));
    ui.rooms.replaceChildren(...sorted.map((name) => {
      const li = h('li', rooms.has(name) ? 'joined' : '');
      if (name === current) li.setAttribute('aria-current', 'true');
      const b = h('button');
      b.type = 'button';
      b.dataset.room = name;
      b.append(h('span', 'name', name));
      const n = names.get(name);
      if (n != null) b.append(h('span', 'count', n));
      b.title = rooms.has(name) ? `Show ${name}` : `Join ${name}`;
      li.append(b);
      return li;
    }));
  }
  function renderMembers() {
    const r = rooms.get(current);
    ui.membersHeading.textContent = r ? `Members of ${r.name}` : 'Members';
    ui.members.replaceChildren(...(r ? r.members : []).map((n) => {
      const li = h('li', n === myName ? 'me' : '', n);
      if (n === myName) li.append(' (you)');
      return li;
    }));
  }
  function renderRoom() {
    const r = rooms.get(current);
    ui.roomTitle.textContent = r ? `# ${r.name}` : 'No room';
    ui.leave.disabled = !r;
    ui.messages.replaceChildren(...(r ? r.items.map(itemNode) : []));
    ui.messages.scrollTop = ui.messages.scrollHeight;
    renderMembers();
    renderRooms();
    updateCompose();
  }
  function renderMe() {
    if (document.activeElement !== ui.nickInput) ui.nickInput.value = myName || '';
  }
  // Typing stays possible while reconnecting; sending (button, Enter) not.
  function updateCompose() {
    ui.text.disabled = !current;
    ui.send.disabled = !(ws && myName && rooms.get(current)?.joined);
  }

  // ---------------------------------------------------------------- wire
  function send(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }
  function request(obj, ctx) {
    obj.ref = 'r' + (++refSeq);
    refs.set(obj.ref, ctx);
    if (!send(obj)) { refs.delete(obj.ref); return false; }
    return true;
  }

  function joinRoom(r) {
    const since = r.lastId;
    const entry = { kind: since != null ? 'since' : 'join' };
    if (since != null && !r.items.length) r.floor = since;
    const req = { type: 'join', room: r.name };
    if (since != null) req.since = since;
    if (request(req, { kind: 'join', room: r.name, entry })) r.pending.push(entry);
  }
  function loadOlder(r) {
    if (!r || !r.joined || r.complete || r.loading || r.pending.length) return;
    const before = r.oldestId ?? (r.floor != null ? r.floor + 1 : null);
    const req = { type: 'history', room: r.name, limit: PAGE };
    if (before != null) req.before = before;
    const entry = { kind: 'older' };
    if (request(req, { kind: 'history', room: r.name, entry })) {
      r.pending.push(entry);
      r.loading = true;
    }
  }
  // Keep loading older pages while the list cannot scroll yet.
  function maybeFill(r) {
    const list = ui.messages;
    if (r.name === current && list.scrollHeight <= list.clientHeight + 4) loadOlder(r);
  }
  function dropPending(r, entry) {
    const i = r ? r.pending.indexOf(entry) : -1;
    if (i >= 0) r.pending.splice(i, 1);
  }
  function refreshRooms() {
    clearTimeout(roomsTimer);
    roomsTimer = setTimeout(() => send({ type: 'rooms' }), 150);
  }
  function nick(name, auto, tries = 0) {
    request({ type: 'nick', name }, { kind: 'nick', name, auto, tries });
  }
  function switchTo(name) {
    current = name;
    save();
    renderRoom();
    const r = rooms.get(name);
    if (r?.joined) { send({ type: 'who', room: name }); maybeFill(r); }
  }
  function leaveRoom(name) {
    const r = rooms.get(name);
    if (!r) return;
    if (r.joined || r.pending.length) send({ type: 'leave', room: name });
    rooms.delete(name);
    if (current === name) current = rooms.keys().next().value ?? null;
    save();
    renderRoom();
    refreshRooms();
  }

  const handlers = {
    welcome(m) {
      myName = String(m.name);
      limits = m.limits || null;
      attempt = 0;
      setStatus('open', `Connected as ${myName}`);
      if (wantedName && wantedName.toLowerCase() !== myName.toLowerCase()) {
        nick(wantedName, true);
      }
      for (const r of rooms.values()) joinRoom(r);
      send({ type: 'rooms' });
      renderMe();
      renderRoom();
    },
    message(m) {
      const r = rooms.get(m.room);
      if (!r) return;
      keepScroll(() => addMessage(r, m));
      save();
    },
    history(m) {
      const r = rooms.get(m.room);
      if (!r || !Array.isArray(m.messages)) return;
      const entry = r.pending.shift() || { kind: 'join' };
      const oldest = r.oldestId;
      keepScroll(() => { for (const msg of m.messages) addMessage(r, msg); });
      if (entry.kind === 'older') {
        r.loading = false;
        // Nothing older came back: stop asking, whatever the flag says.
        r.complete = !!m.complete || r.oldestId === oldest;
      } else {
        r.joined = true;   // a join's history: we are in the room
        if (entry.kind === 'join') r.complete = !!m.complete || !m.messages.length;
        updateCompose();
      }
      save();
      if (!r.complete) maybeFill(r);
    },
    joined(m) {
      const r = rooms.get(m.room);
      if (r && m.name === myName) {
        r.joined = true;
        if (r.name === current) { renderMembers(); updateCompose(); }
      }
      if (r && m.name !== myName) {
        if (!r.members.includes(m.name)) r.members = [...r.members, m.name].sort();
        if (r.name === current) renderMembers();
      }
      addNote(r, 'presence', `${m.name === myName ? 'You' : m.name} joined ${m.room}`, m.ts);
      refreshRooms();
    },
    left(m) {
      const r = rooms.get(m.room);
      if (r) {
        r.members = r.members.filter((n) => n !== m.name);
        if (r.name === current) renderMembers();
        if (m.name !== myName) addNote(r, 'presence', `${m.name} left ${m.room}`, m.ts);
      }
      refreshRooms();
    },
    renamed(m) {
      const key = `${m.from}\n${m.to}\n${m.ts}`;
      if (seenRenames.has(key)) return;
      seenRenames.add(key);
      if (m.from === myName) {
        myName = String(m.to);
        setStatus('open', `Connected as ${myName}`);
        renderMe();
      }
      const text = `${m.from} is now ${m.to}`;
      let shown = false;
      for (const r of rooms.values()) {
        if (!r.members.includes(m.from) && m.to !== myName) continue;
        r.members = r.members.map((n) => (n === m.from ? m.to : n)).sort();
        addNote(r, 'presence', text, m.ts);
        shown = true;
      }
      if (!shown) addNote(rooms.get(current), 'presence', text, m.ts);
      renderMembers();
    },
    members(m) {
      const r = rooms.get(m.room);
      if (!r || !Array.isArray(m.names)) return;
      r.members = m.names.map(String);
      if (r.name === current) renderMembers();
    },
    rooms(m) {
      if (Array.isArray(m.rooms)) serverRooms = m.rooms;
      renderRooms();
    },
    whisper(m) {
      addNote(rooms.get(current), 'whisper', String(m.text), m.ts,
        { from: String(m.from), to: String(m.to) });
    },
    ack(m) {
      const ctx = refs.get(m.ref);
      refs.delete(m.ref);
      if (ctx?.kind === 'nick') {
        myName = ctx.name;
        wantedName = ctx.name;
        ui.nickError.textContent = '';
        setStatus('open', `Connected as ${myName}`);
        save();
        renderMe();
        renderMembers();
      }
    },
    error(m) {
      const ctx = m.ref != null ? refs.get(m.ref) : null;
      refs.delete(m.ref);
      const what = `${m.code}: ${m.message || ''}`;
      if (ctx?.kind === 'nick') {
        if (ctx.auto && m.code === 'name_taken' && ctx.tries < 5) {
          // our old session may not be gone yet after a reload
          setTimeout(() => nick(ctx.name, true, ctx.tries + 1), 1000);
          return;
        }
        ui.nickError.textContent = m.code === 'name_taken'
          ? `The name “${ctx.name}” is taken.`
          : m.code === 'invalid_name'
            ? 'Names are 1–32 letters, digits, “_”, “.” or “-”.' : what;
        if (ctx.auto) wantedName = null;
        renderMe();
        return;
      }
      if (ctx?.kind === 'join' || ctx?.kind === 'history') {
        const r = rooms.get(ctx.room);
        dropPending(r, ctx.entry);
        if (ctx.kind === 'history' && r) r.loading = false;
        if (ctx.kind === 'join' && r && !r.joined && m.code !== 'rate_limited') {
          leaveRoom(ctx.room);
        }
      }
      if (ctx?.kind === 'say' && !ui.text.value) ui.text.value = ctx.text;
      showError(m.code === 'too_long' ? 'That message is too long.'
        : m.code === 'rate_limited' ? 'Slow down: message dropped.'
          : m.code === 'invalid_room' ? 'Rooms are 1–64 letters, digits, “_”, “.” or “-”.'
            : m.code === 'no_such_user' ? 'No such user.'
              : what);
    },
  };

  // ---------------------------------------------------------------- connection
  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    setStatus('connecting', 'Connecting…');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/chat`;
    let sock;
    try { sock = new WebSocket(url, SUBPROTOCOL); } catch { scheduleReconnect(); return; }
    ws = sock;
    sock.onmessage = (ev) => {
      if (sock !== ws || typeof ev.data !== 'string') return;
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m && typeof m === 'object' && Object.hasOwn(handlers, m.type)) handlers[m.type](m);
    };
    sock.onclose = (ev) => {
      if (sock !== ws) return;
      ws = null;
      myName = null;
      refs.clear();
      for (const r of rooms.values()) {
        r.joined = false; r.pending = []; r.loading = false;
      }
      updateCompose();
      scheduleReconnect(ev.code);
    };
  }
  function scheduleReconnect(code) {
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** attempt);
    const delay = Math.round(base / 2 + Math.random() * base / 2);   // jitter
    attempt++;
    const at = Date.now() + delay;
    const tick = () => {
      const s = Math.max(0, (at - Date.now()) / 1000).toFixed(1);
      setStatus('closed', `Disconnected${code ? ` (${code})` : ''}; reconnecting in ${s} s`);
      if (Date.now() < at) retryTimer = setTimeout(tick, Math.min(500, at - Date.now()));
      else connect();
    };
    tick();
  }

  // ---------------------------------------------------------------- input
  ui.nickForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = ui.nickInput.value.trim();
    ui.nickError.textContent = '';
    if (name && name !== myName) nick(name, false);
  });
  ui.nickInput.addEventListener('blur', renderMe);
  ui.joinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = ui.joinInput.value.trim();
    if (!name) return;
    ui.joinInput.value = '';
    if (!rooms.has(name)) { roomState(name); save(); if (ws && myName) joinRoom(rooms.get(name)); }
    switchTo(name);
    ui.text.focus();
  });
  ui.rooms.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-room]');
    if (!b) return;
    const name = b.dataset.room;
    if (!rooms.has(name)) { roomState(name); save(); if (ws && myName) joinRoom(rooms.get(name)); }
    switchTo(name);
  });
  ui.leave.addEventListener('click', () => { if (current) leaveRoom(current); });
  ui.messages.addEventListener('scroll', () => {
    if (ui.messages.scrollTop < 40) loadOlder(rooms.get(current));
  });
  ui.compose.addEventListener('submit', (ev) => {
    ev.preventDefault();
    let text = ui.text.value;
    if (!text || !current || ui.send.disabled) return;
    showError('');
    const w = /^\/msg\s+(\S+)\s+([\s\S]+)$/.exec(text);
    if (text.startsWith('//')) text = text.slice(1);
    else if (w) {
      if (request({ type: 'whisper', to: w[1], text: w[2] }, { kind: 'say', text })) ui.text.value = '';
      return;
    }
    const max = limits?.text;
    if (max && new TextEncoder().encode(text).length > max) {
      showError(`That message is too long (max ${max} bytes).`);
      return;
    }
    if (request({ type: 'say', room: current, text }, { kind: 'say', text: ui.text.value })) {
      ui.text.value = '';
    }
  });

  renderRoom();
  connect();
  ui.text.focus();
})();
