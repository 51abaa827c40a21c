/*
 * cksum.h -- the Internet checksum (RFC 1071) for every native module.
 *
 * The one C definition of one's-complement arithmetic (the dissector's
 * verdicts, the listing's -v checksums); Python's is wire/checksum.py.
 */
#ifndef TCPSCOPE_CKSUM_H
#define TCPSCOPE_CKSUM_H

#include <stdint.h>
#include <string.h>

static inline uint16_t fold(uint64_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xFFFF) + (acc >> 16);
    return (uint16_t)acc;
}

/* One's-complement sum of `n` bytes as big-endian 16-bit words, folded.
 * The words are added in the host's byte order into a 64-bit accumulator and
 * the folded result is swapped once at the end: RFC 1071 §2(B) shows the sum
 * is byte-order independent. The bytes must start at an even offset of the
 * checksummed data (they always do here: headers start the data). */
static inline uint16_t sum_be(const uint8_t *p, uint32_t n)
{
    uint64_t acc = 0;
    while (n >= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        acc += (a & 0xFFFFFFFFu) + (a >> 32) + (b & 0xFFFFFFFFu) + (b >> 32);
        p += 16;
        n -= 16;
    }
    while (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        acc += w;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        acc += w;
        p += 2;
        n -= 2;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    if (n)
        acc += (uint32_t)p[0] << 8; /* a trailing odd byte is the high byte of a word */
    return fold(acc);
#else
    if (n)
        acc += p[0];
    uint16_t s = fold(acc);
    return (uint16_t)((s >> 8) | (s << 8));
#endif
}

/* What the checksum field should hold, given the carried value and the folded
 * sum over everything including it (RFC 1624 §3, the way tcpdump prints it
 * after "incorrect ->"). */
static inline uint16_t csum_should_be(uint16_t carried, uint16_t total)
{
    return fold((uint32_t)carried + (uint16_t)~total);
}

#endif
