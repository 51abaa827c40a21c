/*
 * seq.h -- 32-bit TCP sequence-number arithmetic for every native module.
 *
 * Sequence numbers live modulo 2^32 (RFC 9293 §3.4); they are compared with
 * RFC 1982 serial arithmetic (Wireshark's GT_SEQ & co.), never with a raw `<`.
 * This is the one C definition; Python's is wire/seq.py.
 */
#ifndef TCPSCOPE_SEQ_H
#define TCPSCOPE_SEQ_H

#include <stdint.h>

/* a - b as a signed serial difference, in [-2^31, 2^31) */
static inline int32_t sdiff(uint32_t a, uint32_t b) { return (int32_t)(a - b); }
static inline int gt_seq(uint32_t a, uint32_t b) { return sdiff(a, b) > 0; }
static inline int lt_seq(uint32_t a, uint32_t b) { return sdiff(a, b) < 0; }
static inline int ge_seq(uint32_t a, uint32_t b) { return sdiff(a, b) >= 0; }
static inline int le_seq(uint32_t a, uint32_t b) { return sdiff(a, b) <= 0; }

#endif
