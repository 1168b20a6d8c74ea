/* bench/mib_cost.c: the C cost of MIB names per trap, for callgrind (bench/RESULTS.md, "MIB
 * names"): writes the JSON record of one packet N times with snmp_json_record (plain) or
 * snmp_json_record_named (named, the table of the given MIB modules). Only write_records
 * is meant to be counted: valgrind --tool=callgrind --toggle-collect=write_records.
 * Usage: mib_cost plain|named PACKET N MIBDIR MODULE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mib.h"
#include "snmp_decode.h"

/* The loop callgrind counts; returns the total length, so that nothing is optimized out. */
__attribute__((noinline)) static size_t write_records(const uint8_t *pkt, size_t len, long n,
                                                      const struct mib_table *names)
{
    static char out[65536];
    size_t total = 0;
    for (long i = 0; i < n; i++) {
        struct snmp_msg m;
        size_t k;
        if (snmp_decode_header(&m, pkt, len) != SNMP_OK ||
            snmp_json_record_named(&m, names, out, sizeof out, &k) != SNMP_OK)
            return 0;
        total += k;
    }
    return total;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: mib_cost plain|named PACKET N MIBDIR MODULE\n");
        return 2;
    }
    static uint8_t pkt[65536];
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    size_t len = fread(pkt, 1, sizeof pkt, f);
    fclose(f);
    char err[MIB_ERR_MAX];
    const char *dirs[] = {argv[4]}, *modules[] = {argv[5]};
    struct mib_table *t = mib_table_load(dirs, 1, modules, 1, err);
    if (!t) {
        fprintf(stderr, "mib_cost: %s\n", err);
        return 1;
    }
    size_t total = write_records(pkt, len, atol(argv[3]), strcmp(argv[1], "named") ? NULL : t);
    printf("%zu bytes written\n", total);
    mib_table_free(t);
    return total ? 0 : 1;
}
