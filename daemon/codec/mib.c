/* daemon/codec/mib.c: owns the MIB name table (struct mib_table: its node, enumeration and
 * text arrays, built once and never changed) and the build's temporary tree. libsmi is used
 * only inside mib_table_load, under mib_libsmi_lock: smiInit, load, walk every node of every
 * loaded module into the table, smiExit. libsmi reports errors through a handler without a
 * context argument: mib_libsmi_capture (guarded by the same lock) is where it collects them,
 * so that nothing is printed to stderr. */
#include "mib.h"

#include <pthread.h>
#include <smi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB_NO_NAME UINT32_MAX

/* A node of the table: children are nodes[first_child .. first_child + nchildren), sorted
 * by arc; the name and the enumeration are slices of text and enums. */
struct mib_node {
    uint32_t arc;
    uint32_t first_child, nchildren;
    uint32_t name, name_len;          /* name == MIB_NO_NAME: none */
    uint32_t first_enum, nenums;
};

struct mib_enum {
    int64_t value;
    uint32_t label, label_len;
};

struct mib_table {
    struct mib_node *nodes;     /* nodes[0]: the root, above iso, ccitt, joint-iso-ccitt */
    size_t nnodes, named;
    /* Nearly every OID starts 1.3.6.1 (content 2b 06 01): mib_lookup_ber starts there, at
     * this node (NULL: the table has none), with what the path to it matched. */
    const struct mib_node *internet;
    struct mib_match internet_match;
    struct mib_enum *enums;
    size_t nenums;
    char *text;
    size_t text_len;
};

/* ---- the build: a tree of pointers, flattened at the end ---- */

struct build_node {
    uint32_t arc;
    struct build_node **kids;
    size_t nkids, cap;
    uint32_t name, name_len;
    uint32_t first_enum, nenums;
};

struct build {
    struct build_node root;
    size_t nnodes;
    struct mib_enum *enums;
    size_t nenums, enums_cap;
    char *text;
    size_t text_len, text_cap;
    int failed;             /* out of memory */
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * size);
    if (q)
        *cap = c;
    return q;
}

static uint32_t add_text(struct build *b, const char *s, size_t n)
{
    char *t = grow(b->text, &b->text_cap, b->text_len + n, 1);
    if (!t || b->text_len + n > UINT32_MAX) {
        b->failed = 1;
        return MIB_NO_NAME;
    }
    b->text = t;
    memcpy(t + b->text_len, s, n);
    uint32_t at = (uint32_t)b->text_len;
    b->text_len += n;
    return at;
}

static struct build_node *child(struct build *b, struct build_node *n, uint32_t arc)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (n->kids[i]->arc == arc)
            return n->kids[i];
    struct build_node **k = grow(n->kids, &n->cap, n->nkids + 1, sizeof *k);
    struct build_node *c = calloc(1, sizeof *c);
    if (!k || !c) {
        if (k)
            n->kids = k;
        free(c);
        b->failed = 1;
        return NULL;
    }
    n->kids = k;
    c->arc = arc;
    c->name = MIB_NO_NAME;
    n->kids[n->nkids++] = c;
    b->nnodes++;
    return c;
}

static void build_free_node(struct build_node *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        build_free_node(n->kids[i]);
        free(n->kids[i]);
    }
    free(n->kids);
}

/* A module name or descriptor we write into JSON as it is: letters, digits, '-', '_'. */
static int plain_ident(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > MIB_IDENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* The named numbers of an enumerated type, following its parents (a textual convention, a
 * refined TC): the first type on the way that has some. */
static SmiType *enum_type(SmiType *t)
{
    for (int depth = 0; t && depth < 16; depth++, t = smiGetParentType(t)) {
        if (t->basetype != SMI_BASETYPE_ENUM)
            return NULL;
        if (smiGetFirstNamedNumber(t))
            return t;
    }
    return NULL;
}

static void add_enums(struct build *b, struct build_node *n, SmiNode *sn)
{
    SmiType *t = enum_type(smiGetNodeType(sn));
    if (!t)
        return;
    n->first_enum = (uint32_t)b->nenums;
    for (SmiNamedNumber *nn = smiGetFirstNamedNumber(t); nn; nn = smiGetNextNamedNumber(nn)) {
        if (!plain_ident(nn->name))
            continue;
        struct mib_enum *e = grow(b->enums, &b->enums_cap, b->nenums + 1, sizeof *e);
        if (!e) {
            b->failed = 1;
            return;
        }
        b->enums = e;
        size_t len = strlen(nn->name);
        uint32_t at = add_text(b, nn->name, len);
        if (at == MIB_NO_NAME)
            return;
        e[b->nenums].value = nn->value.basetype == SMI_BASETYPE_INTEGER32
                                 ? nn->value.value.integer32
                                 : (int64_t)nn->value.value.unsigned32;
        e[b->nenums].label = at;
        e[b->nenums].label_len = (uint32_t)len;
        b->nenums++;
        n->nenums++;
    }
}

/* Adds one node of a module; the first module to name an OID keeps it. */
static void add_node(struct build *b, SmiModule *mod, SmiNode *sn)
{
    if (!plain_ident(sn->name) || !plain_ident(mod->name) || sn->oidlen == 0 ||
        sn->oidlen > BER_MAX_OID_ARCS)
        return;
    struct build_node *n = &b->root;
    for (unsigned i = 0; i < sn->oidlen && n; i++)
        n = child(b, n, sn->oid[i]);
    if (!n || n->name != MIB_NO_NAME)
        return;
    char name[2 * MIB_IDENT_MAX + 3];
    int len = snprintf(name, sizeof name, "%s::%s", mod->name, sn->name);
    n->name = add_text(b, name, (size_t)len);
    n->name_len = (uint32_t)len;
    add_enums(b, n, sn);
}

static int by_arc(const void *a, const void *b)
{
    uint32_t x = (*(struct build_node *const *)a)->arc, y = (*(struct build_node *const *)b)->arc;
    return x < y ? -1 : x > y;
}

/* Breadth first: each node's children land side by side, sorted. */
static int flatten(struct build *b, struct mib_table *t)
{
    t->nodes = calloc(b->nnodes + 1, sizeof *t->nodes);
    struct build_node **queue = calloc(b->nnodes + 1, sizeof *queue);
    if (!t->nodes || !queue) {
        free(queue);
        return -1;
    }
    size_t head = 0, tail = 0;
    queue[tail++] = &b->root;
    while (head < tail) {
        struct build_node *bn = queue[head];
        struct mib_node *mn = &t->nodes[head];
        head++;
        if (bn->nkids > 1)          /* kids is NULL when there are none */
            qsort(bn->kids, bn->nkids, sizeof *bn->kids, by_arc);
        mn->arc = bn->arc;
        mn->name = bn->name;
        mn->name_len = bn->name_len;
        mn->first_enum = bn->first_enum;
        mn->nenums = bn->nenums;
        mn->first_child = (uint32_t)tail;
        mn->nchildren = (uint32_t)bn->nkids;
        if (bn->name != MIB_NO_NAME)
            t->named++;
        for (size_t i = 0; i < bn->nkids; i++)
            queue[tail++] = bn->kids[i];
    }
    t->nnodes = tail;
    free(queue);
    return 0;
}

static const struct mib_node *find_child(const struct mib_table *t, const struct mib_node *n,
                                         uint32_t arc);

/* t->internet and t->internet_match: the walk down 1.3.6.1, done once. */
static void find_internet(struct mib_table *t)
{
    static const uint32_t path[] = {1, 3, 6, 1};
    const struct mib_node *node = &t->nodes[0];
    struct mib_match m = {NULL, 0, 0};
    for (size_t i = 0; i < 4 && node; i++) {
        node = find_child(t, node, path[i]);
        if (node && node->name != MIB_NO_NAME) {
            m.node = node;
            m.matched = i + 1;
            m.tail = i;         /* 1.3: after octet 0, 1.3.6: after 1, 1.3.6.1: after 2 */
        }
    }
    t->internet = node;
    t->internet_match = m;
}

/* ---- libsmi, confined ---- */

/* libsmi 0.4.8 does not free all it allocates (some strings of its parser, its formatted
 * error messages, a few nodes: a few hundred bytes per load, none per trap). Under
 * LeakSanitizer (the ASan build, the fuzz targets) those are suppressed here, in the
 * binaries that link this file; the vasprintf frame is libsmi's smiVasprintf, whose caller
 * the fast unwinder cannot see (libsmi has no frame pointers). Nothing else in luadgramd
 * calls vasprintf. */
#if defined(__SANITIZE_ADDRESS__)
#define MIB_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MIB_LSAN 1
#endif
#endif
#ifdef MIB_LSAN
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libsmi.so\n";
}
#endif

/* libsmi's global state, and the error collection of the load in progress. */
static pthread_mutex_t mib_libsmi_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mib_libsmi_errors {
    char first[MIB_ERR_MAX / 2];     /* the first error of the module being loaded */
    int count;
} mib_libsmi_capture;

/* Severities 0-2 are errors (libsmi: "internal", "major", "error"); the rest warnings. */
#define MIB_SMI_ERROR_LEVEL 2

static void mib_libsmi_error(char *path, int line, int severity, char *msg, char *tag)
{
    (void)tag;
    if (severity > MIB_SMI_ERROR_LEVEL)
        return;
    if (mib_libsmi_capture.count++ > 0)
        return;
    const char *file = path ? strrchr(path, '/') : NULL;
    file = file ? file + 1 : path;
    if (file && line > 0)
        snprintf(mib_libsmi_capture.first, sizeof mib_libsmi_capture.first, "%s (%s:%d)",
                 msg ? msg : "error", file, line);
    else
        snprintf(mib_libsmi_capture.first, sizeof mib_libsmi_capture.first, "%s",
                 msg ? msg : "error");
}

/* 1 when module `mod` defines `name` (a node, a type or a macro). */
static int defines(SmiModule *mod, char *name)
{
    return smiGetNode(mod, name) || smiGetType(mod, name) || smiGetMacro(mod, name);
}

/* Checks that every import of every loaded module resolves; the first that does not as an
 * error naming the module asked for (`wanted`), the importing one, the import and its
 * module. libsmi only reports these (and goes on without the import). */
static int check_imports(const char *wanted, char *err)
{
    for (SmiModule *mod = smiGetFirstModule(); mod; mod = smiGetNextModule(mod)) {
        for (SmiImport *imp = smiGetFirstImport(mod); imp; imp = smiGetNextImport(imp)) {
            /* libsmi leaves the module's name empty when it could not find it */
            int found = imp->module && imp->module[0];
            SmiModule *from = found ? smiGetModule(imp->module) : NULL;
            if (from && defines(from, imp->name))
                continue;
            char in[2 * MIB_IDENT_MAX + 16] = "";
            if (strcmp(mod->name, wanted) != 0)
                snprintf(in, sizeof in, " (in %.64s, which it imports)", mod->name);
            if (from)
                snprintf(err, MIB_ERR_MAX, "module \"%s\": cannot import %.64s from %.64s, "
                         "which does not define it%s", wanted, imp->name, imp->module, in);
            else
                snprintf(err, MIB_ERR_MAX, "module \"%s\": cannot import %.64s: %s%s", wanted,
                         imp->name, mib_libsmi_capture.count > 0 ? mib_libsmi_capture.first
                                                                 : "its module is not found",
                         in);
            return -1;
        }
    }
    return 0;
}

static int load_modules(const char *const *modules, size_t nmodules, char *err)
{
    for (size_t i = 0; i < nmodules; i++) {
        mib_libsmi_capture.count = 0;
        mib_libsmi_capture.first[0] = 0;
        char *name = smiLoadModule(modules[i]);
        if (!name) {
            snprintf(err, MIB_ERR_MAX, "module \"%s\": %s", modules[i],
                     mib_libsmi_capture.count > 0 ? mib_libsmi_capture.first
                                                   : "cannot locate module");
            return -1;
        }
        if (check_imports(modules[i], err) != 0)
            return -1;
    }
    return 0;
}

static void walk_modules(struct build *b)
{
    for (SmiModule *mod = smiGetFirstModule(); mod && !b->failed; mod = smiGetNextModule(mod))
        for (SmiNode *sn = smiGetFirstNode(mod, SMI_NODEKIND_ANY); sn && !b->failed;
             sn = smiGetNextNode(sn, SMI_NODEKIND_ANY))
            add_node(b, mod, sn);
}

/* "dir1:dir2..." for smiSetPath, or NULL (out of memory). */
static char *search_path(const char *const *dirs, size_t ndirs)
{
    size_t len = 1;
    for (size_t i = 0; i < ndirs; i++)
        len += strlen(dirs[i]) + 1;
    char *p = malloc(len);
    if (!p)
        return NULL;
    p[0] = 0;
    for (size_t i = 0; i < ndirs; i++) {
        if (i)
            strcat(p, ":");
        strcat(p, dirs[i]);
    }
    return p;
}

const char *mib_unavailable(void)
{
    return NULL;
}

struct mib_table *mib_table_load(const char *const *dirs, size_t ndirs,
                                 const char *const *modules, size_t nmodules, char *err)
{
    struct build b;
    memset(&b, 0, sizeof b);
    b.root.name = MIB_NO_NAME;
    struct mib_table *t = calloc(1, sizeof *t);
    char *path = search_path(dirs, ndirs);
    if (!t || !path) {
        free(t);
        free(path);
        snprintf(err, MIB_ERR_MAX, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&mib_libsmi_lock);
    /* smiInit reads libsmi's configuration files (/etc/smi.conf, ~/.smirc): a parse error
     * there would be printed (the handler can only be set once it has run); the path they
     * set is replaced below. */
    smiInit(NULL);
    smiSetErrorHandler(mib_libsmi_error);
    smiSetFlags(SMI_FLAG_NODESCR | SMI_FLAG_ERRORS | SMI_FLAG_RECURSIVE);
    smiSetErrorLevel(MIB_SMI_ERROR_LEVEL);
    smiSetPath(path);
    int ok = load_modules(modules, nmodules, err) == 0;
    if (ok)
        walk_modules(&b);
    smiExit();
    pthread_mutex_unlock(&mib_libsmi_lock);
    free(path);

    if (ok && !b.failed && flatten(&b, t) != 0)
        b.failed = 1;
    if (ok && !b.failed)
        find_internet(t);
    if (ok && b.failed)
        snprintf(err, MIB_ERR_MAX, "out of memory");
    build_free_node(&b.root);
    if (!ok || b.failed) {
        free(b.enums);
        free(b.text);
        mib_table_free(t);
        return NULL;
    }
    t->enums = b.enums;
    t->nenums = b.nenums;
    t->text = b.text;
    t->text_len = b.text_len;
    return t;
}

void mib_table_free(struct mib_table *t)
{
    if (!t)
        return;
    free(t->nodes);
    free(t->enums);
    free(t->text);
    free(t);
}

size_t mib_table_size(const struct mib_table *t)
{
    return t->named;
}

/* ---- lookups: the table only ---- */

static const struct mib_node *find_child(const struct mib_table *t, const struct mib_node *n,
                                         uint32_t arc)
{
    size_t lo = n->first_child, hi = lo + n->nchildren;
    if (n->nchildren <= 4) {            /* most nodes: a few children, no search */
        for (; lo < hi; lo++)
            if (t->nodes[lo].arc == arc)
                return &t->nodes[lo];
        return NULL;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t a = t->nodes[mid].arc;
        if (a == arc)
            return &t->nodes[mid];
        if (a < arc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

struct mib_match mib_lookup(const struct mib_table *t, const uint32_t *arcs, size_t n)
{
    struct mib_match m = {NULL, 0, 0};
    const struct mib_node *node = &t->nodes[0];
    for (size_t i = 0; i < n; i++) {
        node = find_child(t, node, arcs[i]);
        if (!node)
            break;
        if (node->name != MIB_NO_NAME) {
            m.node = node;
            m.matched = i + 1;
        }
    }
    return m;
}

/* Writes ".arc" at out; returns its length. Arcs are mostly below 100. */
static inline size_t put_arc(char *out, uint32_t a)
{
    out[0] = '.';
    if (a < 10) {
        out[1] = (char)('0' + a);
        return 2;
    }
    if (a < 100) {
        out[1] = (char)('0' + a / 10);
        out[2] = (char)('0' + a % 10);
        return 3;
    }
    char digits[10];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + a % 10);
        a /= 10;
    } while (a);
    size_t n = 1;
    while (k)
        out[n++] = digits[--k];
    return n;
}

size_t mib_name_write(const struct mib_table *t, const struct mib_match *match,
                      const uint32_t *arcs, size_t n, char *out)
{
    const struct mib_node *node = match->node;
    if (!node)
        return 0;
    memcpy(out, t->text + node->name, node->name_len);
    size_t len = node->name_len;
    for (size_t i = match->matched; i < n; i++)
        len += put_arc(out + len, arcs[i]);
    return len;
}

/* The next arc of checked content from v[*i .. len). */
static inline uint32_t next_arc(const uint8_t *v, size_t len, size_t *i)
{
    uint32_t x = 0;
    while (*i < len) {
        uint8_t b = v[(*i)++];
        x = (x << 7) | (b & 0x7f);
        if (!(b & 0x80))
            break;
    }
    return x;
}

/* Walks on from `node` (at `depth` arcs, the content read up to i) as far as the table
 * goes; m: what the path to it matched. */
static struct mib_match walk_ber(const struct mib_table *t, const struct mib_node *node,
                                 size_t depth, const uint8_t *v, size_t len, size_t i,
                                 struct mib_match m)
{
    for (; node; depth++) {
        if (node->name != MIB_NO_NAME) {
            m.node = node;
            m.matched = depth;
            m.tail = i;
        }
        if (i >= len || node->nchildren == 0)
            break;
        node = find_child(t, node, next_arc(v, len, &i));
    }
    return m;
}

struct mib_match mib_lookup_ber(const struct mib_table *t, const uint8_t *v, size_t len)
{
    struct mib_match m = {NULL, 0, 0};
    size_t i = 0;
    if (len > 3 && v[0] == 0x2b && v[1] == 6 && v[2] == 1 && t->internet) {
        i = 3;
        const struct mib_node *node = find_child(t, t->internet, next_arc(v, len, &i));
        return walk_ber(t, node, 5, v, len, i, t->internet_match);
    }
    uint32_t x = next_arc(v, len, &i);      /* the first group: two arcs */
    uint32_t first = x < 40 ? 0 : x < 80 ? 1 : 2;
    const struct mib_node *node = find_child(t, &t->nodes[0], first);
    if (!node)
        return m;
    if (node->name != MIB_NO_NAME) {
        m.node = node;
        m.matched = 1;
    }
    return walk_ber(t, find_child(t, node, x - 40 * first), 2, v, len, i, m);
}

size_t mib_name_write_ber(const struct mib_table *t, const struct mib_match *match,
                          const uint8_t *v, size_t len, char *out)
{
    const struct mib_node *node = match->node;
    if (!node)
        return 0;
    if (match->matched < 2) {           /* the rest starts inside the first group */
        uint32_t arcs[BER_MAX_OID_ARCS];
        return mib_name_write(t, match, arcs, mib_ber_arcs(v, len, arcs), out);
    }
    memcpy(out, t->text + node->name, node->name_len);
    size_t n = node->name_len, i = match->tail;
    while (i < len)
        n += put_arc(out + n, next_arc(v, len, &i));
    return n;
}

const char *mib_enum_label(const struct mib_table *t, const struct mib_match *match,
                           int64_t v, size_t *len)
{
    const struct mib_node *node = match->node;
    if (!node)
        return NULL;
    const struct mib_enum *e = t->enums + node->first_enum;
    for (uint32_t i = 0; i < node->nenums; i++) {
        if (e[i].value == v) {
            *len = e[i].label_len;
            return t->text + e[i].label;
        }
    }
    return NULL;
}

size_t mib_ber_arcs(const uint8_t *v, size_t len, uint32_t *arcs)
{
    size_t n = 0;
    uint64_t x = 0;
    for (size_t i = 0; i < len && n + 1 < BER_MAX_OID_ARCS + 1; i++) {
        x = (x << 7) | (v[i] & 0x7f);
        if (v[i] & 0x80)
            continue;
        if (n == 0) {           /* the first group holds two arcs */
            uint64_t first = x < 40 ? 0 : x < 80 ? 1 : 2;
            arcs[n++] = (uint32_t)first;
            x -= first * 40;
        }
        if (n >= BER_MAX_OID_ARCS)
            break;
        arcs[n++] = (uint32_t)x;
        x = 0;
    }
    return n;
}

size_t mib_dotted_arcs(const char *s, size_t len, uint32_t *arcs)
{
    size_t n = 0, i = 0;
    while (i < len) {
        uint64_t x = 0;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 11)
            x = x * 10 + (uint64_t)(s[i++] - '0');
        if (i == start || x > UINT32_MAX || n == MIB_MAX_ARCS)
            return 0;
        arcs[n++] = (uint32_t)x;
        if (i < len && s[i++] != '.')
            return 0;
        if (i == len && s[len - 1] == '.')
            return 0;
    }
    return n;
}
