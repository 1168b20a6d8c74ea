/* daemon/codec/mib_none.c: mib.h in a build without MIB names (CMake option LUADGRAM_MIBS
 * OFF: the Windows build, which does not build libsmi; cmake/features.cmake).
 * mib_unavailable says why; mib_table_load always fails with that reason, so that no table
 * ever exists and the lookups (which need one) are never reached: they find nothing. The
 * snmptrap handler checks mib_unavailable first (luadgram.mib's `unavailable`) and refuses
 * `mibs` at init; without `mibs` the records are what they are in the full build. Owns
 * nothing. */
#include "mib.h"

#include <stdio.h>
#include <string.h>

#define MIB_WHY "MIB names need a build with libsmi (not the Windows build)"

const char *mib_unavailable(void)
{
    return MIB_WHY;
}

struct mib_table *mib_table_load(const char *const *dirs, size_t ndirs,
                                 const char *const *modules, size_t nmodules, char *err)
{
    (void)dirs;
    (void)ndirs;
    (void)modules;
    (void)nmodules;
    snprintf(err, MIB_ERR_MAX, "%s", MIB_WHY);
    return NULL;
}

void mib_table_free(struct mib_table *t) { (void)t; }
size_t mib_table_size(const struct mib_table *t) { (void)t; return 0; }

static struct mib_match no_match(void)
{
    struct mib_match m = {NULL, 0, 0};
    return m;
}

struct mib_match mib_lookup(const struct mib_table *t, const uint32_t *arcs, size_t n)
{
    (void)t;
    (void)arcs;
    (void)n;
    return no_match();
}

size_t mib_name_write(const struct mib_table *t, const struct mib_match *match,
                      const uint32_t *arcs, size_t n, char *out)
{
    (void)t;
    (void)match;
    (void)arcs;
    (void)n;
    (void)out;
    return 0;
}

struct mib_match mib_lookup_ber(const struct mib_table *t, const uint8_t *v, size_t len)
{
    (void)t;
    (void)v;
    (void)len;
    return no_match();
}

size_t mib_name_write_ber(const struct mib_table *t, const struct mib_match *match,
                          const uint8_t *v, size_t len, char *out)
{
    (void)t;
    (void)match;
    (void)v;
    (void)len;
    (void)out;
    return 0;
}

const char *mib_enum_label(const struct mib_table *t, const struct mib_match *match,
                           int64_t v, size_t *len)
{
    (void)t;
    (void)match;
    (void)v;
    *len = 0;
    return NULL;
}

size_t mib_ber_arcs(const uint8_t *v, size_t len, uint32_t *arcs)
{
    (void)v;
    (void)len;
    (void)arcs;
    return 0;
}

size_t mib_dotted_arcs(const char *s, size_t len, uint32_t *arcs)
{
    (void)s;
    (void)len;
    (void)arcs;
    return 0;
}
