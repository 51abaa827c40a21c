/*
 * tcpflags.h -- tcpdump's TCP flag letters, the one C definition.
 *
 * Letters in the order tcpdump prints them (print-tcp.c): F S R P . U E W e,
 * where `.` is ACK and `e` the AccECN AE bit (0x100); "none" when no flag is
 * set. Python's definition is wire/text.py; tests/test_wire_text.py holds the
 * two to the same text for all 512 values.
 */
#ifndef TCPSCOPE_TCPFLAGS_H
#define TCPSCOPE_TCPFLAGS_H

#include <stdint.h>

static const struct { uint16_t bit; char letter; } TCPS_FLAG_LETTERS[9] = {
    {0x001, 'F'}, {0x002, 'S'}, {0x004, 'R'}, {0x008, 'P'}, {0x010, '.'},
    {0x020, 'U'}, {0x040, 'E'}, {0x080, 'W'}, {0x100, 'e'},
};

/* Write the letters of `flags` (9 bits) into out (at least 10 bytes), NUL-terminated;
 * returns the length written (4 for "none"). */
static inline int tcps_flags_text(uint16_t flags, char *out)
{
    int n = 0;
    for (int i = 0; i < 9; i++)
        if (flags & TCPS_FLAG_LETTERS[i].bit)
            out[n++] = TCPS_FLAG_LETTERS[i].letter;
    if (n == 0) {
        out[0] = 'n'; out[1] = 'o'; out[2] = 'n'; out[3] = 'e';
        n = 4;
    }
    out[n] = '\0';
    return n;
}

#endif
