/*
 * ipid.c -- ip_id_gap (any mode): how many IPv4 IDs a direction skipped just
 * before a segment, when its IDs otherwise count up by one per segment (a
 * per-connection counter, as Linux keeps for a connected socket; RFC 6864 §4).
 * The skipped values are packets the capture did not see.
 *
 * A host that numbers all its packets from one counter (as Windows does)
 * spends IDs on its other packets too, and those are not missing: so the last
 * IPv4 ID of every source address, and which packet used it, is kept in a
 * small hash table (host_get), fed by every IPv4 packet (host_note for those
 * that are not segments of a conversation).
 */
#include "engine.h"

static uint32_t ipv4_src(const tcps_record *r)
{
    uint32_t a;
    memcpy(&a, r->src, 4);
    return a;
}

/* The host entry of an IPv4 source address, made if new; NULL for 0.0.0.0, when
 * MAX_HOSTS are tracked already, or without memory. */
static host_t *host_get(Engine *e, uint32_t addr)
{
    if (!addr)
        return NULL;
    if ((e->hosts_used + 1) * 2 > e->hosts_cap && e->hosts_used < MAX_HOSTS) {
        size_t cap = e->hosts_cap ? e->hosts_cap * 2 : 256;
        host_t *t = calloc(cap, sizeof(host_t));
        if (t) {
            for (size_t i = 0; i < e->hosts_cap; i++) {
                if (!e->hosts[i].addr)
                    continue;
                size_t j = (e->hosts[i].addr * 2654435761u) & (cap - 1);
                while (t[j].addr)
                    j = (j + 1) & (cap - 1);
                t[j] = e->hosts[i];
            }
            free(e->hosts);
            e->hosts = t;
            e->hosts_cap = cap;
        }
    }
    if (!e->hosts_cap)
        return NULL;
    size_t j = (addr * 2654435761u) & (e->hosts_cap - 1);
    while (e->hosts[j].addr && e->hosts[j].addr != addr)
        j = (j + 1) & (e->hosts_cap - 1);
    if (!e->hosts[j].addr) {
        if (e->hosts_used >= MAX_HOSTS || (e->hosts_used + 1) * 2 > e->hosts_cap)
            return NULL;
        e->hosts[j].addr = addr;
        e->hosts[j].owner = -1;
        e->hosts_used++;
    }
    return &e->hosts[j];
}

/* An IPv4 packet that is not a TCP segment of a conversation spends its host's ID. */
void host_note(Engine *e, const tcps_record *r)
{
    if (r->ip_version != 4 || r->ip_id == 0)
        return;
    host_t *h = host_get(e, ipv4_src(r));
    if (h) {
        h->last_id = r->ip_id;
        h->owner = -1;
    }
}

/* Any mode: how many IPv4 IDs this direction skipped just before this segment,
 * while its IDs otherwise go up by exactly one per segment -- a per-connection
 * counter, as Linux keeps for a connected socket (RFC 6864 §4 allows it): the
 * skipped values are packets it sent that the capture did not see. ID 0 is left
 * out (Linux sends its SYN-ACKs and TIME-WAIT ACKs with ID 0; a counter passing
 * 0 costs one step, counted). A segment with more payload than the peer's MSS
 * (1460 if unknown) is several packets merged by TSO or GRO: the IDs of such a
 * capture are not one per packet, and are not trusted after it. */
uint8_t ip_id_gap(Engine *e, const pkt_t *p, flow_t *fwd, uint16_t peer_mss, int64_t owner)
{
    const tcps_record *r = p->r;
    uint16_t id = r->ip_id;
    if (r->ip_version != 4 || id == 0) {
        if (r->ip_version == 4 && p->seglen > (peer_mss ? peer_mss : 1460))
            fwd->idc_state = IDC_NOT;
        return 0;
    }
    host_t *h = host_get(e, ipv4_src(r));
    uint8_t gap = 0;
    if (fwd->idc_state == IDC_NONE) {
        fwd->idc_state = IDC_ONE;
    } else if (fwd->idc_state != IDC_NOT) {
        uint16_t step = (uint16_t)(id - fwd->idc_last);
        if (id < fwd->idc_last && step > 1)
            step--;              /* wrapped: the counter's own 0 is not a packet we skipped */
        if (step == 1) {
            fwd->idc_state = IDC_COUNTER;
        } else if (fwd->idc_state == IDC_COUNTER && step >= 2 && step <= 1 + IPID_GAP_MAX) {
            /* Skipped, unless the host's latest other packet in the capture took one of
             * those IDs: then it numbers all its packets from one counter. */
            uint16_t other = h ? (uint16_t)(h->last_id - fwd->idc_last) : 0;
            if (!h || (h->owner != owner && other >= 1 && other < step))
                fwd->idc_state = IDC_NOT;
            else
                gap = (uint8_t)(step - 1);
        } else {
            fwd->idc_state = IDC_NOT;
        }
    }
    fwd->idc_last = id;
    if (p->seglen > (peer_mss ? peer_mss : 1460)) {
        fwd->idc_state = IDC_NOT;
        gap = 0;
    }
    if (h) {
        h->last_id = id;
        h->owner = owner;
    }
    return gap;
}

void hosts_free(Engine *e)
{
    free(e->hosts);
    e->hosts = NULL;
    e->hosts_cap = e->hosts_used = 0;
}
