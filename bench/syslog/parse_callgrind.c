/* bench/syslog/parse_callgrind.c: a driver for measuring the C syslog parser
 * (daemon/codec/syslog_parse.c) in instructions per message under valgrind --tool=callgrind,
 * which counts the same under load. Reads one message a line from the file given, parses
 * every line ROUNDS times (no allocation, no output but a checksum), so callgrind's total
 * divided by lines * ROUNDS is the parser's cost per message. Not built by CMake; see the
 * command in bench/RESULTS.md (syslog notes). */
#include "syslog_parse.h"

#include <stdio.h>
#include <string.h>

enum { ROUNDS = 20, MAX_LINES = 4096, MAX_TEXT = 1 << 20 };

static unsigned char text[MAX_TEXT];
static size_t starts[MAX_LINES], lens[MAX_LINES];

int main(int argc, char **argv)
{
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    if (!f) {
        fprintf(stderr, "usage: parse_callgrind FILE (one message a line)\n");
        return 2;
    }
    size_t size = fread(text, 1, sizeof text, f);
    fclose(f);
    size_t nlines = 0, from = 0;
    for (size_t i = 0; i < size && nlines < MAX_LINES; i++) {
        if (text[i] == '\n') {
            starts[nlines] = from;
            lens[nlines++] = i - from;
            from = i + 1;
        }
    }
    struct syslog_rec rec;
    size_t sum = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t i = 0; i < nlines; i++) {
            syslog_parse(&rec, text + starts[i], lens[i], 1709640000, false, 0);
            sum += rec.msg.len + rec.app_name.len + rec.hostname.len;
        }
    }
    printf("%zu lines x %d rounds, checksum %zu\n", nlines, ROUNDS, sum);
    return 0;
}
