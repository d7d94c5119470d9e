/*
 * ytree.c - YAML bytes to a node tree, through libyaml's event parser.
 *
 * The tree is small and plain (an array of nodes linked by index) so the
 * schema walker can look keys up, report duplicates and read `environment`
 * before anything else. Everything a configuration does not need is
 * refused rather than half-supported: anchors/aliases (billion-laughs
 * style expansion), tags, several documents. Limits bound memory and time
 * for any input (CFG_MAX_*).
 */
#include "config/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/xmalloc.h"
#include "common/banned.h"

struct ybuild {
    struct cfg_ytree *t;
    const char *file;
    struct cfg_diag *diag;
    uint32_t stack[CFG_MAX_DEPTH];
    unsigned depth;
    unsigned docs;
};

static uint32_t mark_line(yaml_mark_t m)
{
    return m.line >= UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)m.line + 1;
}

static int fail_at(struct ybuild *b, uint32_t line, const char *fmt, ...) KM_PRINTF(3, 4);

static int fail_at(struct ybuild *b, uint32_t line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg_diag_at(b->diag, CFG_ERROR, b->file, line, "%s", msg);
    return KM_ERR_CONFIG;
}

/* Anchors, aliases and tags are refused: a configuration never needs them
 * and aliases are the classic YAML amplification vector. */
static int check_props(struct ybuild *b, yaml_mark_t m, const yaml_char_t *anchor,
                       const yaml_char_t *tag)
{
    if (anchor != NULL)
        return fail_at(b, mark_line(m),
                       "anchors and aliases (&name, *name) are not supported: write the value "
                       "out in full");
    if (tag != NULL) {
        char q[80];
        const char *s = (const char *)tag;
        return fail_at(b, mark_line(m), "YAML tags ('%s') are not supported: remove the tag",
                       cfg_quote(q, sizeof(q), s, strlen(s), 40));
    }
    return KM_OK;
}

static int add_node(struct ybuild *b, enum cfg_ynode_kind kind, yaml_mark_t m, uint32_t *out)
{
    struct cfg_ytree *t = b->t;
    if (t->n >= CFG_MAX_NODES)
        return fail_at(b, mark_line(m),
                       "more than %u YAML nodes: far larger than any KeyMeld configuration",
                       CFG_MAX_NODES);
    if (b->depth > 0) {
        const struct cfg_ynode *parent = &t->nodes[b->stack[b->depth - 1]];
        if (parent->kind == CFG_Y_MAP && parent->count >= 2u * CFG_MAX_MAP_KEYS)
            return fail_at(b, mark_line(m), "more than %u keys in one mapping", CFG_MAX_MAP_KEYS);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->nodes = xrealloc(t->nodes, st_mult(t->cap, sizeof(*t->nodes)));
    }
    uint32_t idx = t->n++;
    struct cfg_ynode *n = &t->nodes[idx];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = mark_line(m);
    n->first = n->last = n->next = CFG_Y_NONE;
    if (b->depth == 0) {
        t->root = idx;
    } else {
        struct cfg_ynode *parent = &t->nodes[b->stack[b->depth - 1]];
        if (parent->last == CFG_Y_NONE)
            parent->first = idx;
        else
            t->nodes[parent->last].next = idx;
        parent->last = idx;
        parent->count++;
    }
    *out = idx;
    return KM_OK;
}

static int on_scalar(struct ybuild *b, const yaml_event_t *ev)
{
    int r = check_props(b, ev->start_mark, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (r != KM_OK)
        return r;
    size_t len = ev->data.scalar.length;
    if (len > CFG_MAX_SCALAR)
        return fail_at(b, mark_line(ev->start_mark), "value longer than %u bytes", CFG_MAX_SCALAR);
    uint32_t idx;
    r = add_node(b, CFG_Y_SCALAR, ev->start_mark, &idx);
    if (r != KM_OK)
        return r;
    struct cfg_ynode *n = &b->t->nodes[idx];
    n->text = xmalloc(len + 1);
    if (len > 0)
        memcpy(n->text, ev->data.scalar.value, len);
    n->text[len] = '\0';
    n->len = len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return KM_OK;
}

static int on_start(struct ybuild *b, const yaml_event_t *ev, enum cfg_ynode_kind kind)
{
    const yaml_char_t *anchor, *tag;
    if (kind == CFG_Y_MAP) {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    } else {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    }
    int r = check_props(b, ev->start_mark, anchor, tag);
    if (r != KM_OK)
        return r;
    if (b->depth >= CFG_MAX_DEPTH)
        return fail_at(b, mark_line(ev->start_mark), "nesting deeper than %u levels",
                       CFG_MAX_DEPTH);
    uint32_t idx;
    r = add_node(b, kind, ev->start_mark, &idx);
    if (r != KM_OK)
        return r;
    b->stack[b->depth++] = idx;
    return KM_OK;
}

/* The key after key k in a mapping (maps alternate key, value). */
static uint32_t next_key(const struct cfg_ynode *nodes, uint32_t k)
{
    uint32_t v = nodes[k].next;
    return v == CFG_Y_NONE ? CFG_Y_NONE : nodes[v].next;
}

/* Keys must be scalars and unique within their mapping. */
static int check_map_keys(struct ybuild *b, const struct cfg_ynode *map)
{
    const struct cfg_ynode *nodes = b->t->nodes;
    for (uint32_t k = map->first; k != CFG_Y_NONE; k = next_key(nodes, k)) {
        const struct cfg_ynode *key = &nodes[k];
        if (key->kind != CFG_Y_SCALAR)
            return fail_at(b, key->line, "mapping keys must be plain names, not %s",
                           cfg_ynode_kind_name(key));
        for (uint32_t p = map->first; p != k; p = next_key(nodes, p)) {
            const struct cfg_ynode *prev = &nodes[p];
            if (prev->len == key->len && memcmp(prev->text, key->text, key->len) == 0) {
                char q[80];
                return fail_at(b, key->line, "duplicate key '%s' (first defined at line %u)",
                               cfg_quote(q, sizeof(q), key->text, key->len, 64), prev->line);
            }
        }
    }
    return KM_OK;
}

static int on_end(struct ybuild *b)
{
    KM_ASSERT(b->depth > 0);
    const struct cfg_ynode *n = &b->t->nodes[b->stack[--b->depth]];
    if (n->kind == CFG_Y_MAP)
        return check_map_keys(b, n);
    return KM_OK;
}

static int on_event(struct ybuild *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1)
            return fail_at(b, mark_line(ev->start_mark),
                           "more than one YAML document (a second '---'): keep the whole "
                           "configuration in one document");
        return KM_OK;
    case YAML_ALIAS_EVENT:
        return fail_at(b, mark_line(ev->start_mark),
                       "anchors and aliases (&name, *name) are not supported: write the value "
                       "out in full");
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, CFG_Y_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, CFG_Y_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b);
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return KM_OK;
    }
    return KM_OK;
}

static uint32_t line_of_offset(const uint8_t *data, size_t len, size_t off)
{
    uint32_t line = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (data[i] == '\n' && line < UINT32_MAX - 1)
            line++;
    }
    return line;
}

static int parser_error(struct ybuild *b, const yaml_parser_t *p, const uint8_t *data, size_t len)
{
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->error == YAML_MEMORY_ERROR)
        return fail_at(b, 0, "out of memory while parsing YAML");
    if (p->error == YAML_READER_ERROR)
        return fail_at(b, line_of_offset(data, len, p->problem_offset),
                       "invalid text: %s (the file must be UTF-8 without control characters)",
                       problem);
    yaml_mark_t m = p->problem_mark;
    const char *hint = "";
    if (m.index < len && data[m.index] == '\t')
        hint = " (tabs cannot indent YAML: use spaces)";
    if (p->context != NULL)
        return fail_at(b, mark_line(m), "invalid YAML: %s %s (from line %u)%s", problem, p->context,
                       mark_line(p->context_mark), hint);
    return fail_at(b, mark_line(m), "invalid YAML: %s%s", problem, hint);
}

int cfg_ytree_build(struct cfg_ytree *t, const uint8_t *data, size_t len, const char *file,
                    struct cfg_diag *diag)
{
    memset(t, 0, sizeof(*t));
    t->root = CFG_Y_NONE;
    struct ybuild b = {.t = t, .file = file, .diag = diag};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return fail_at(&b, 0, "out of memory while parsing YAML");
    yaml_parser_set_input_string(&p, len ? data : (const uint8_t *)"", len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);

    int r = KM_OK;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            r = parser_error(&b, &p, data, len);
            break;
        }
        bool done = ev.type == YAML_STREAM_END_EVENT;
        r = on_event(&b, &ev);
        yaml_event_delete(&ev);
        if (r != KM_OK || done)
            break;
    }
    yaml_parser_delete(&p);
    return r;
}

void cfg_ytree_release(struct cfg_ytree *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->n; i++)
        free(t->nodes[i].text);
    free(t->nodes);
    memset(t, 0, sizeof(*t));
    t->root = CFG_Y_NONE;
}

bool cfg_ynode_is_null(const struct cfg_ynode *n)
{
    if (n->kind != CFG_Y_SCALAR || !n->plain)
        return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < KM_ARRAY_LEN(nulls); i++) {
        if (n->len == strlen(nulls[i]) && memcmp(n->text, nulls[i], n->len) == 0)
            return true;
    }
    return false;
}

const char *cfg_ynode_kind_name(const struct cfg_ynode *n)
{
    switch (n->kind) {
    case CFG_Y_MAP:
        return "a mapping";
    case CFG_Y_SEQ:
        return "a list";
    case CFG_Y_SCALAR:
        return "a single value";
    }
    return "a value";
}
