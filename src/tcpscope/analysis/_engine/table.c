/*
 * table.c -- the conversation table: which stream a packet belongs to.
 *
 * A 4-tuple maps to its newest stream (tcp.stream numbers are given in order
 * of first appearance) through a hash table with open addressing. Each entry
 * holds the conversation's analysis state (conv_t: both directions) while it
 * may still matter; a closed conversation (RST, or FIN both ways) waits in a
 * queue and gives up that state after close_timeout of capture time, or at
 * once beyond max_closed, keeping only what port-reuse detection and relative
 * numbers need. A later frame for it brings fresh state back on the same bases.
 * An attempt (only one side has sent: a SYN flood's every SYN) gives up its
 * state after attempt_timeout, or at once beyond max_attempts of them. Beyond
 * max_evicted light entries the oldest leave the table: its stream is final
 * (a later frame of that 4-tuple starts a new stream) and waits to be drained.
 * Memory is thus bounded by the active connections, not by the capture.
 *
 *   make_key          the direction-free key and the packet's direction (flow1 / flow2)
 *   table_lookup      the entry of a packet's 4-tuple, made or restored as needed
 *   table_restart     a new stream on the same 4-tuple (reused ports)
 *   closed_push, closed_sweep   the queue of closed conversations, and their eviction
 *   attempts_sweep              eviction of attempts past their timeout
 *   list_*, table_remove        the entry lists (engine.h), deletion from the table
 *   table_free        everything the table holds
 */
#include "engine.h"


/* Which direction a packet goes: Wireshark's flow1 is the one whose source
 * address compares greater (cmp_address), or, for equal addresses, whose
 * source port is greater; everything else is flow2. */
void make_key(const tcps_record *r, conv_key_t *k, int *dir)
{
    int alen = r->ip_version == 6 ? 16 : 4;
    int c = memcmp(r->src, r->dst, (size_t)alen);
    int flow1 = c > 0 || (c == 0 && r->sport > r->dport);
    memset(k, 0, sizeof(*k));
    k->version = r->ip_version;
    if (flow1) {
        memcpy(k->a, r->src, (size_t)alen);
        memcpy(k->b, r->dst, (size_t)alen);
        k->pa = r->sport;
        k->pb = r->dport;
        *dir = 0;
    } else {
        memcpy(k->a, r->dst, (size_t)alen);
        memcpy(k->b, r->src, (size_t)alen);
        k->pa = r->dport;
        k->pb = r->sport;
        *dir = 1;
    }
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t key_hash(const conv_key_t *k)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)k->pa << 16 | k->pb) ^ ((uint64_t)k->version << 40);
    h = mix64(h ^ load64(k->a));
    h = mix64(h ^ load64(k->b));
    if (k->version == 6) {
        h = mix64(h ^ load64(k->a + 8));
        h = mix64(h ^ load64(k->b + 8));
    }
    return h | 1; /* 0 marks an empty slot */
}

static inline int key_eq(const conv_key_t *x, const conv_key_t *y)
{
    return x->pa == y->pa && x->pb == y->pb && x->version == y->version &&
           memcmp(x->a, y->a, 16) == 0 && memcmp(x->b, y->b, 16) == 0;
}

static int table_grow(Engine *e)
{
    size_t cap = e->table_cap ? e->table_cap * 2 : 1024;
    slot_t *t = calloc(cap, sizeof(slot_t));
    if (!t)
        return -1;
    for (size_t i = 0; i < e->table_cap; i++) {
        slot_t s = e->table[i];
        if (!s.hash)
            continue;
        size_t j = (size_t)s.hash & (cap - 1);
        while (t[j].hash)
            j = (j + 1) & (cap - 1);
        t[j] = s;
    }
    free(e->table);
    e->table = t;
    e->table_cap = cap;
    return 0;
}

/* The slot of a key: its conversation, or the empty slot where it would go. */
static slot_t *table_find(Engine *e, const conv_key_t *k, uint64_t h)
{
    size_t mask = e->table_cap - 1, j = (size_t)h & mask;
    for (;;) {
        slot_t *s = &e->table[j];
        if (!s->hash || (s->hash == h && key_eq(&s->ent->key, k)))
            return s;
        j = (j + 1) & mask;
    }
}

/* ---- the entry lists (LIST_*): doubly linked, oldest activity first ---- */

static void list_unlink(Engine *e, entry_t *ent)
{
    int l = ent->list;
    if (ent->lprev)
        ent->lprev->lnext = ent->lnext;
    else
        e->lhead[l] = ent->lnext;
    if (ent->lnext)
        ent->lnext->lprev = ent->lprev;
    else
        e->ltail[l] = ent->lprev;
    ent->lprev = ent->lnext = NULL;
    e->lcount[l]--;
}

static void list_append(Engine *e, entry_t *ent, int l)
{
    ent->list = (uint8_t)l;
    ent->lnext = NULL;
    ent->lprev = e->ltail[l];
    if (e->ltail[l])
        e->ltail[l]->lnext = ent;
    else
        e->lhead[l] = ent;
    e->ltail[l] = ent;
    e->lcount[l]++;
}

/* Take a key's slot out of the table (linear probing: later keys of its run move
 * back so that every key stays reachable from its home slot). */
static void table_remove(Engine *e, const entry_t *ent)
{
    size_t mask = e->table_cap - 1;
    slot_t *slot = table_find(e, &ent->key, ent->hash);
    size_t i = (size_t)(slot - e->table), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!e->table[j].hash)
            break;
        size_t home = (size_t)e->table[j].hash & mask;
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        e->table[i] = e->table[j];
        i = j;
    }
    e->table[i].hash = 0;
    e->table[i].ent = NULL;
    e->table_used--;
}

static void flow_init(flow_t *f)
{
    memset(f, 0, sizeof(*f));
    f->window = 0xFFFFFFFFu;
    f->win_scale = -1;
    f->valid_bif = 1;
    f->segs.sorted = 1;
}

static conv_t *conv_alloc(Engine *e)
{
    conv_t *c = calloc(1, sizeof(conv_t));
    if (!c)
        return NULL;
    flow_init(&c->flow[0]);
    flow_init(&c->flow[1]);
    e->active_convs++;
    return c;
}

static void conv_free(Engine *e, conv_t *c)
{
    for (int i = 0; i < 2; i++) {
        seglist_free(e, &c->flow[i].segs);
        sender_free(e, &c->flow[i]);
    }
    free(c);
    e->active_convs--;
}

/* Keep only the light entry: the bases (for reuse detection and relative
 * numbers), the stream, the summary. */
static void entry_evict(Engine *e, entry_t *ent)
{
    conv_t *c = ent->conv;
    if (!c)
        return;
    for (int i = 0; i < 2; i++) {
        ent->base_seq[i] = c->flow[i].base_seq;
        ent->base_set[i] = c->flow[i].base_set;
    }
    conv_free(e, c);
    ent->conv = NULL;
    e->evicted++;
    list_unlink(e, ent);
    list_append(e, ent, LIST_EVICTED);
}

/* A frame for an evicted connection: fresh analysis state on the same bases. */
static conv_t *entry_resurrect(Engine *e, entry_t *ent)
{
    conv_t *c = conv_alloc(e);
    if (!c)
        return NULL;
    for (int i = 0; i < 2; i++)
        if (ent->base_set[i])
            reset_base(&c->flow[i], ent->base_seq[i]);
    ent->conv = c;
    e->resurrected++;
    const summary_t *s = SUM(e, ent->stream);
    list_unlink(e, ent);
    list_append(e, ent, s->pkts[0] && s->pkts[1] ? LIST_OPEN : LIST_ATTEMPT);
    return c;
}

/* Free an entry; its stream is final (-1: no memory to note that). */
static int entry_free(Engine *e, entry_t *ent)
{
    if (ent->conv)
        conv_free(e, ent->conv);
    list_unlink(e, ent);
    summary_t *s = SUM(e, ent->stream);
    s->ent = NULL;
    if (e->last == ent)
        e->last = NULL;
    free(ent);
    return summary_final(e, s);
}

/* The oldest light entry leaves the table: its stream is final. */
static int entry_retire(Engine *e, entry_t *ent)
{
    table_remove(e, ent);
    e->retired++;
    return entry_free(e, ent);
}

/* Bounds by count: the oldest attempts give up their state beyond max_attempts, the
 * oldest light entries leave the table beyond max_evicted. */
static int table_bound(Engine *e)
{
    while (e->lcount[LIST_ATTEMPT] > e->max_attempts)
        entry_evict(e, e->lhead[LIST_ATTEMPT]);
    while (e->lcount[LIST_EVICTED] > e->max_evicted)
        if (entry_retire(e, e->lhead[LIST_EVICTED]) < 0)
            return -1;
    return 0;
}

/* A new conversation for this 4-tuple (tcp.stream = the next index). The
 * previous one on the same slot, if any, is freed: Wireshark's one-pass
 * lookup only ever finds the newest. */
static entry_t *entry_new(Engine *e, slot_t *slot, const conv_key_t *k, uint64_t h, const pkt_t *p, int dir)
{
    entry_t *ent = calloc(1, sizeof(entry_t));
    if (!ent)
        return NULL;
    conv_t *c = conv_alloc(e);
    summary_t *s = c ? summary_new(e) : NULL;
    if (!s) {
        if (c)
            conv_free(e, c);
        free(ent);
        return NULL;
    }
    ent->key = *k;
    ent->hash = h;
    ent->stream = s->stream;
    ent->conv = c;
    s->ent = ent;
    s->key = *k;
    s->first_ts = p->ts;
    s->first_frame = p->frame;
    s->iface = p->iface;
    /* Roles: the SYN sender is the client; a SYN-ACK's receiver is; without
     * either, the first sender, marked as a guess. */
    if ((p->flags & (TCPS_SYN | TCPS_ACK)) == (TCPS_SYN | TCPS_ACK))
        s->client = (uint8_t)(dir ^ 1);
    else
        s->client = (uint8_t)dir;
    s->role_guessed = !(p->flags & TCPS_SYN);
    list_append(e, ent, LIST_ATTEMPT);
    if (slot->hash) {
        s->prev_stream = slot->ent->stream;
        if (entry_free(e, slot->ent) < 0) {
            slot->ent = ent;   /* the table stays whole; the caller fails */
            return NULL;
        }
    } else {
        e->table_used++;
    }
    slot->hash = h;
    slot->ent = ent;
    return table_bound(e) < 0 ? NULL : ent;
}

/* The entry of a packet's 4-tuple, with its analysis state: the one found
 * (brought back if it was evicted), or a new one (the next stream). NULL
 * without memory. Consecutive frames of one flow skip the hash lookup. */
entry_t *table_lookup(Engine *e, const conv_key_t *k, const pkt_t *p, int dir)
{
    entry_t *ent = e->last;
    if (!ent || !key_eq(&ent->key, k)) {
        uint64_t h = key_hash(k);
        if ((e->table_used + 1) * 2 > e->table_cap && table_grow(e) < 0)
            return NULL;
        slot_t *slot = table_find(e, k, h);
        if (!slot->hash) {
            ent = entry_new(e, slot, k, h, p, dir);
            if (!ent)
                return NULL;
        } else {
            ent = slot->ent;
        }
        e->last = ent;
    }
    if (!ent->conv && !entry_resurrect(e, ent))
        return NULL;
    /* Its activity is the newest: to the end of its list (an attempt whose other
     * side now sends is open). */
    int l = ent->list;
    if (l == LIST_ATTEMPT) {
        const summary_t *s = SUM(e, ent->stream);
        if (s->pkts[dir ^ 1] && !s->pkts[dir])
            l = LIST_OPEN;
    }
    if (ent != e->ltail[l] || l != ent->list) {
        list_unlink(e, ent);
        list_append(e, ent, l);
    }
    ent->last_ts = p->ts;
    return ent;
}

/* A new stream on ent's 4-tuple (reused ports), which replaces it. NULL
 * without memory. */
entry_t *table_restart(Engine *e, entry_t *ent, const pkt_t *p, int dir)
{
    conv_key_t k = ent->key;
    uint64_t h = ent->hash;
    slot_t *slot = table_find(e, &k, h);
    ent = entry_new(e, slot, &k, h, p, dir);
    if (ent)
        e->last = ent;
    return ent;
}

/* Closed connections (RST, or FIN both ways) wait in a queue; the oldest is
 * evicted once idle for close_timeout of capture time, or at once when more
 * than max_closed are waiting. The sweep also evicts the attempts past their
 * timeout. */
int closed_push(Engine *e, int64_t stream)
{
    if (e->closed_n == e->closed_cap) {
        size_t cap = e->closed_cap ? e->closed_cap * 2 : 1024;
        int64_t *q = malloc(cap * sizeof(int64_t));
        if (!q)
            return -1;
        for (size_t i = 0; i < e->closed_n; i++)
            q[i] = e->closed[(e->closed_head + i) % e->closed_cap];
        free(e->closed);
        e->closed = q;
        e->closed_cap = cap;
        e->closed_head = 0;
    }
    e->closed[(e->closed_head + e->closed_n) % e->closed_cap] = stream;
    e->closed_n++;
    return 0;
}

void closed_sweep(Engine *e)
{
    attempts_sweep(e);
    while (e->closed_n > 0) {
        int64_t stream = e->closed[e->closed_head];
        const summary_t *s = summary_live(e, stream);
        entry_t *ent = s ? s->ent : NULL;
        /* In closing order: stop at the first one still within its timeout
         * (a late frame may hold the queue a little; that only delays). */
        if (ent && ent->conv && e->closed_n <= e->max_closed && e->now - ent->last_ts < e->close_timeout_ns)
            break;
        e->closed_head = (e->closed_head + 1) % e->closed_cap;
        e->closed_n--;
        if (ent) {
            ent->queued = 0;
            entry_evict(e, ent);
        }
    }
}

/* Attempts idle for attempt_timeout of capture time give up their state (oldest
 * first: the list is in order of last activity). */
void attempts_sweep(Engine *e)
{
    entry_t *ent;
    while ((ent = e->lhead[LIST_ATTEMPT]) && e->now - ent->last_ts >= e->attempt_timeout_ns)
        entry_evict(e, ent);
}

void table_free(Engine *e)
{
    for (size_t i = 0; i < e->table_cap; i++)
        if (e->table[i].hash) {
            entry_t *ent = e->table[i].ent;
            if (ent->conv)
                conv_free(e, ent->conv);
            SUM(e, ent->stream)->ent = NULL;
            free(ent);
        }
    free(e->table);
    free(e->closed);
    e->table = NULL;
    e->closed = NULL;
    e->table_cap = e->table_used = 0;
    e->closed_n = e->closed_cap = e->closed_head = 0;
    e->last = NULL;
    for (int l = 0; l < LIST_COUNT; l++) {
        e->lhead[l] = e->ltail[l] = NULL;
        e->lcount[l] = 0;
    }
}
