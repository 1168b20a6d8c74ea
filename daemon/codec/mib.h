/* daemon/codec/mib.h: MIB names for OIDs (what snmptrapd prints without -On), from MIB
 * modules loaded with libsmi once, at a listener's init, into a compact immutable table of
 * its own: an OID tree whose nodes carry "MODULE::descriptor" and, for enumerated INTEGER
 * objects (also through textual conventions), their labels. libsmi's global state lives
 * only inside mib_table_load (under a process-wide lock, smiExit before it returns); the
 * lookups read only the table, so that any number of threads may share one. */
#ifndef LUADGRAM_MIB_H
#define LUADGRAM_MIB_H

#include <stddef.h>
#include <stdint.h>

#include "ber.h"

struct mib_table;

/* The longest name mib_name_write writes: a descriptor and module of at most
 * MIB_IDENT_MAX characters each, "::", and every arc after it (no NUL). */
#define MIB_IDENT_MAX 64
/* The most arcs looked up: an OID's, or a v1 trap's enterprise.0.specific. */
#define MIB_MAX_ARCS (BER_MAX_OID_ARCS + 2)
#define MIB_NAME_MAX (2 * MIB_IDENT_MAX + 2 + 11 * MIB_MAX_ARCS)
/* The room an error message of mib_table_load needs. */
#define MIB_ERR_MAX 1024

/* NULL in a build with MIB names (mib.c); in one without (mib_none.c: the Windows build,
 * which has no libsmi) why not, for the init error of `mibs` (CMake option LUADGRAM_MIBS,
 * cmake/features.cmake). Without MIB names mib_table_load always fails with that reason. */
const char *mib_unavailable(void);

/* Loads the modules (names as in their DEFINITIONS) from the folders dirs (searched in
 * order, nothing else: not libsmi's configured path), with every module they import, and
 * builds the table of all their named nodes. NULL on failure, with a message in err (up to
 * MIB_ERR_MAX bytes): 'module "X": <libsmi's first error>' ("cannot locate module",
 * "identifier `Y' cannot be imported from module `Z'", ...), or "out of memory". */
struct mib_table *mib_table_load(const char *const *dirs, size_t ndirs,
                                 const char *const *modules, size_t nmodules, char *err);
void mib_table_free(struct mib_table *t);
/* The number of named nodes (for tests and logs). */
size_t mib_table_size(const struct mib_table *t);

/* What a lookup found for an OID: the deepest named node on its path (NULL: none, then no
 * name) and how many of its arcs that node accounts for. */
struct mib_match {
    const void *node;
    size_t matched;
    size_t tail;        /* mib_lookup_ber: the offset in the content of the arcs past node
                         * (when matched >= 2: the first octet group holds two arcs) */
};

/* Looks up n arcs. */
struct mib_match mib_lookup(const struct mib_table *t, const uint32_t *arcs, size_t n);
/* Writes "MODULE::descriptor" and ".arc" for each arc past match->matched (snmptrapd's
 * default form) into out (MIB_NAME_MAX bytes); returns the length, 0 when there is no name.
 * arcs, n: what was looked up. */
size_t mib_name_write(const struct mib_table *t, const struct mib_match *match,
                      const uint32_t *arcs, size_t n, char *out);
/* The same for checked OID content (ber_oid_check), read in place: the fast path of the
 * JSON record (no array of arcs). Gives what mib_lookup gives for mib_ber_arcs of it. */
struct mib_match mib_lookup_ber(const struct mib_table *t, const uint8_t *v, size_t len);
/* mib_name_write for a match of mib_lookup_ber on v[0 .. len): the same text. */
size_t mib_name_write_ber(const struct mib_table *t, const struct mib_match *match,
                          const uint8_t *v, size_t len, char *out);
/* The label of value v in the enumeration of the object match names (NULL when it has
 * none or v is not in it); *len gets its length. */
const char *mib_enum_label(const struct mib_table *t, const struct mib_match *match,
                           int64_t v, size_t *len);

/* The arcs of checked OID content (ber_oid_check) into arcs[BER_MAX_OID_ARCS]; returns
 * their number. */
size_t mib_ber_arcs(const uint8_t *v, size_t len, uint32_t *arcs);
/* The arcs of a dotted OID "1.3.6..." (digits and dots, each arc < 2^32, at most
 * MIB_MAX_ARCS) into arcs[MIB_MAX_ARCS]; returns their number, 0 when it is not one. */
size_t mib_dotted_arcs(const char *s, size_t len, uint32_t *arcs);

#endif
