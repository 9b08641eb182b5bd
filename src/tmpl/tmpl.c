/*
 * tmpl: the escaping template renderer (tmpl.h). A template is parsed once
 * into a flat array of nodes (text, value, section); a section records the
 * index just past its body, so rendering walks the array without a tree.
 * Invariants, so that any input (templates and values alike) is safe to feed:
 *  1. Every value is written through put_value, which escapes in TMPL_HTML;
 *     the parser refuses every Mustache form that would not ({{{x}}}, {{&x}}),
 *     and partials and delimiter changes ({{>x}}, {{=x=}}), with a position.
 *  2. Sections nest at most TMPL_MAX_DEPTH deep (refused at parse), so the
 *     renderer's recursion and its scope stack are bounded.
 *  3. Rendering stops as soon as the output would pass `max`, and after a
 *     number of steps bounded by `max` (nested loops that write nothing
 *     cannot run for long): either way tmpl_render returns NULL.
 *  4. Parsing is one pass over the source: each byte is looked at a bounded
 *     number of times.
 */
#include "tmpl/tmpl.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMPL_MAX_DEPTH 32  /* sections inside sections */
#define TMPL_MAX_NAME  128 /* bytes in one {{name}} */

enum node_kind { NODE_TEXT, NODE_VALUE, NODE_SECTION, NODE_INVERTED };

struct node {
	enum node_kind kind;
	/* Text: its bytes in t->src. The others: the tag's offset and the name's length. */
	size_t off, len;
	char *name;    /* the others: NUL-separated parts ("" for "."), owned */
	size_t nparts; /* 0 for "." */
	size_t end;    /* sections: index of the first node after the body */
};

struct tmpl {
	enum tmpl_mode mode;
	char *src;          /* a copy of the source, owned */
	struct node *nodes; /* owned */
	size_t n, cap;
};

/* ---- parsing ---- */

struct parser {
	struct tmpl *t;
	const char *src;
	size_t len;
	char *err;
	size_t errlen;
	size_t open[TMPL_MAX_DEPTH]; /* node index of each open section */
	size_t depth;
};

/* Writes "line L, column C: why" for byte offset `at`; returns false. */
static bool
fail(struct parser *p, size_t at, const char *why)
{
	size_t line = 1, col = 1;

	for (size_t i = 0; i < at && i < p->len; i++) {
		if (p->src[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "line %zu, column %zu: %s", line, col, why);
	return false;
}

static struct node *
push(struct parser *p, enum node_kind kind)
{
	struct tmpl *t = p->t;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct node *nodes = realloc(t->nodes, cap * sizeof(*nodes));

		if (nodes == NULL)
			return NULL;
		t->nodes = nodes;
		t->cap = cap;
	}
	t->nodes[t->n] = (struct node){.kind = kind};
	return &t->nodes[t->n++];
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/*
 * Checks the name in [s, s+n) (surrounding blanks already trimmed): "." or
 * dot-separated parts of name characters. Sets *parts (owned) and *nparts.
 */
static bool
parse_name(struct parser *p, size_t at, const char *s, size_t n, char **parts, size_t *nparts)
{
	char *copy;
	size_t count = 1;

	*parts = NULL;
	*nparts = 0;
	if (n == 0)
		return fail(p, at, "empty tag name");
	if (n > TMPL_MAX_NAME)
		return fail(p, at, "tag name too long");
	if (n == 1 && s[0] == '.') {
		*parts = calloc(1, 1);
		return *parts != NULL || fail(p, at, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (i == 0 || i + 1 == n || s[i + 1] == '.')
				return fail(p, at, "malformed dotted name");
			count++;
		} else if (!name_char(s[i])) {
			return fail(p, at, "invalid character in tag name");
		}
	}
	copy = malloc(n + 1);
	if (copy == NULL)
		return fail(p, at, "out of memory");
	for (size_t i = 0; i < n; i++)
		copy[i] = s[i] == '.' ? '\0' : s[i];
	copy[n] = '\0';
	*parts = copy;
	*nparts = count;
	return true;
}

static bool
add_text(struct parser *p, size_t from, size_t to)
{
	struct node *nd;

	if (to <= from)
		return true;
	/* Adjacent text (around a comment or a standalone tag) joins one node. */
	if (p->t->n > 0) {
		nd = &p->t->nodes[p->t->n - 1];
		if (nd->kind == NODE_TEXT && nd->off + nd->len == from) {
			nd->len += to - from;
			return true;
		}
	}
	nd = push(p, NODE_TEXT);
	if (nd == NULL)
		return fail(p, from, "out of memory");
	nd->off = from;
	nd->len = to - from;
	return true;
}

static bool
blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * A section, inverted, closing or comment tag alone on its line takes the
 * line with it (as in Mustache), so that a plain-text template can put its
 * tags on lines of their own. Sets *line_start (where the text before the tag
 * ends) and *resume (where the text after it starts) when it is standalone.
 */
static void
standalone(
    const struct parser *p, size_t tag_start, size_t tag_end, size_t *line_start, size_t *resume)
{
	size_t a = tag_start, b = tag_end;

	while (a > 0 && blank(p->src[a - 1]))
		a--;
	if (a > 0 && p->src[a - 1] != '\n')
		return;
	while (b < p->len && blank(p->src[b]))
		b++;
	if (b < p->len && p->src[b] == '\r' && b + 1 < p->len && p->src[b + 1] == '\n')
		b += 2;
	else if (b < p->len && p->src[b] == '\n')
		b++;
	else if (b != p->len)
		return;
	*line_start = a;
	*resume = b;
}

static bool
open_section(struct parser *p, size_t at, enum node_kind kind, const char *s, size_t n)
{
	struct node *nd;
	char *parts;
	size_t nparts;

	if (p->depth == TMPL_MAX_DEPTH)
		return fail(p, at, "sections nested too deeply");
	if (!parse_name(p, at, s, n, &parts, &nparts))
		return false;
	nd = push(p, kind);
	if (nd == NULL) {
		free(parts);
		return fail(p, at, "out of memory");
	}
	nd->name = parts;
	nd->nparts = nparts;
	nd->off = at;
	nd->len = n;
	p->open[p->depth++] = p->t->n - 1;
	return true;
}

static bool
close_section(struct parser *p, size_t at, const char *s, size_t n)
{
	char *parts;
	size_t nparts;
	struct node *nd;
	bool same;

	if (p->depth == 0)
		return fail(p, at, "closing tag without an open section");
	if (!parse_name(p, at, s, n, &parts, &nparts))
		return false;
	nd = &p->t->nodes[p->open[p->depth - 1]];
	same = n == nd->len && memcmp(parts, nd->name, n) == 0;
	free(parts);
	if (!same)
		return fail(p, at, "closing tag does not match the open section");
	nd->end = p->t->n;
	p->depth--;
	return true;
}

/* One tag: src[start] is the first '{', src[end] just past the closing "}}". */
static bool
parse_tag(struct parser *p, size_t start, size_t end, size_t *text_from)
{
	const char *s = p->src + start + 2;
	size_t n = end - start - 4;
	char sigil = n > 0 ? s[0] : '\0';
	size_t line_start = start, resume = end;
	struct node *nd;

	switch (sigil) {
	case '{':
	case '&':
		return fail(p, start, "unescaped output is not supported");
	case '>':
		return fail(p, start, "partials are not supported");
	case '=':
		return fail(p, start, "delimiter changes are not supported");
	case '#':
	case '^':
	case '/':
	case '!':
		s++;
		n--;
		standalone(p, start, end, &line_start, &resume);
		break;
	default:
		sigil = '\0';
		break;
	}
	if (!add_text(p, *text_from, line_start))
		return false;
	*text_from = resume;
	if (sigil == '!')
		return true;
	while (n > 0 && blank(s[0])) {
		s++;
		n--;
	}
	while (n > 0 && blank(s[n - 1]))
		n--;
	if (sigil == '#')
		return open_section(p, start, NODE_SECTION, s, n);
	if (sigil == '^')
		return open_section(p, start, NODE_INVERTED, s, n);
	if (sigil == '/')
		return close_section(p, start, s, n);
	nd = push(p, NODE_VALUE);
	if (nd == NULL)
		return fail(p, start, "out of memory");
	nd->off = start;
	nd->len = n;
	return parse_name(p, start, s, n, &nd->name, &nd->nparts);
}

/*
 * The offset of the next "cc" at or after `from`, or `len`; stops at a
 * newline when `stop_at_newline` (then returns `len` too). A plain loop
 * rather than memmem, whose sanitizer interceptor checks the whole rest of
 * the buffer on every call.
 */
static size_t
find_pair(const char *s, size_t from, size_t len, char c, bool stop_at_newline)
{
	for (size_t i = from; i + 1 < len; i++) {
		if (s[i] == c && s[i + 1] == c)
			return i;
		if (stop_at_newline && s[i] == '\n')
			return len;
	}
	return len;
}

static bool
parse_all(struct parser *p)
{
	size_t i = 0, text_from = 0;

	for (;;) {
		size_t start = find_pair(p->src, i, p->len, '{', false);
		size_t body = start + 2, close;

		if (start == p->len)
			break;
		/* A comment may hold anything but "}}"; a tag holds no newline. */
		close = find_pair(p->src, body, p->len, '}', body < p->len && p->src[body] != '!');
		if (close == p->len)
			return fail(p, start, "unclosed tag");
		i = close + 2;
		if (!parse_tag(p, start, i, &text_from))
			return false;
	}
	if (p->depth > 0)
		return fail(p, p->t->nodes[p->open[p->depth - 1]].off, "unclosed section");
	return add_text(p, text_from, p->len);
}

struct tmpl *
tmpl_parse(const char *src, size_t len, enum tmpl_mode mode, char *err, size_t errlen)
{
	struct tmpl *t = calloc(1, sizeof(*t));
	struct parser p = {.t = t, .src = src, .len = len, .err = err, .errlen = errlen};

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (t == NULL) {
		fail(&p, 0, "out of memory");
		return NULL;
	}
	t->mode = mode;
	t->src = malloc(len + 1);
	if (t->src == NULL) {
		fail(&p, 0, "out of memory");
		tmpl_free(t);
		return NULL;
	}
	if (len > 0)
		memcpy(t->src, src, len);
	t->src[len] = '\0';
	p.src = t->src;
	if (!parse_all(&p)) {
		tmpl_free(t);
		return NULL;
	}
	return t;
}

void
tmpl_free(struct tmpl *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->nodes[i].name);
	free(t->nodes);
	free(t->src);
	free(t);
}

/* ---- rendering ---- */

struct out {
	char *buf;
	size_t len, cap, max;
	size_t steps; /* left before the render gives up */
	bool failed;
};

static bool
put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return false;
	if (n > o->max - o->len) {
		o->failed = true;
		return false;
	}
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		char *buf;

		while (cap < o->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
		if (cap > o->max + 1)
			cap = o->max + 1;
		buf = realloc(o->buf, cap);
		if (buf == NULL) {
			o->failed = true;
			return false;
		}
		o->buf = buf;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	return true;
}

static void
put_html(struct out *o, const char *s, size_t n)
{
	size_t from = 0;

	for (size_t i = 0; i < n && !o->failed; i++) {
		const char *rep;

		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		case '\0':
			rep = "\xEF\xBF\xBD";
			break; /* U+FFFD: NUL has no place in HTML */
		default:
			continue;
		}
		put(o, s + from, i - from);
		put(o, rep, strlen(rep));
		from = i + 1;
	}
	put(o, s + from, n - from);
}

static void
put_value(struct out *o, enum tmpl_mode mode, const json_t *v)
{
	char num[64];
	const char *s = num;
	size_t n;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		n = json_string_length(v);
		break;
	case JSON_INTEGER:
		n = (size_t)snprintf(
		    num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		n = (size_t)snprintf(num, sizeof(num), "%.15g", json_real_value(v));
		if (strtod(num, NULL) != json_real_value(v))
			n = (size_t)snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		break;
	case JSON_TRUE:
		s = "true";
		n = 4;
		break;
	case JSON_FALSE:
		s = "false";
		n = 5;
		break;
	default: /* null, objects and arrays render nothing */
		return;
	}
	if (mode == TMPL_HTML)
		put_html(o, s, n);
	else
		put(o, s, n);
}

/* The value `nd` names in the scopes stack[0..depth] (innermost last), or NULL. */
static const json_t *
lookup(const struct node *nd, const json_t *const *stack, size_t depth)
{
	const char *part = nd->name;
	const json_t *v = NULL;

	if (nd->nparts == 0)
		return stack[depth];
	for (size_t i = depth + 1; i-- > 0;) {
		if (json_is_object(stack[i])) {
			v = json_object_get(stack[i], part);
			if (v != NULL)
				break;
		}
	}
	for (size_t k = 1; k < nd->nparts && v != NULL; k++) {
		part += strlen(part) + 1;
		v = json_is_object(v) ? json_object_get(v, part) : NULL;
	}
	return v;
}

static bool
truthy(const json_t *v)
{
	switch (v == NULL ? JSON_NULL : json_typeof(v)) {
	case JSON_OBJECT:
		return true;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_TRUE:
		return true;
	default:
		return false;
	}
}

static bool
step(struct out *o)
{
	if (o->steps == 0)
		o->failed = true;
	else
		o->steps--;
	return !o->failed;
}

/* Renders nodes [from, to) with scopes stack[0..depth]; depth < TMPL_MAX_DEPTH + 1. */
static void
render(
    const struct tmpl *t, size_t from, size_t to, const json_t **stack, size_t depth, struct out *o)
{
	for (size_t i = from; i < to && step(o);) {
		const struct node *nd = &t->nodes[i];
		const json_t *v;

		switch (nd->kind) {
		case NODE_TEXT:
			put(o, t->src + nd->off, nd->len);
			i++;
			continue;
		case NODE_VALUE:
			v = lookup(nd, stack, depth);
			if (v != NULL)
				put_value(o, t->mode, v);
			i++;
			continue;
		case NODE_INVERTED:
			if (!truthy(lookup(nd, stack, depth)))
				render(t, i + 1, nd->end, stack, depth, o);
			i = nd->end;
			continue;
		case NODE_SECTION:
			v = lookup(nd, stack, depth);
			if (json_is_array(v)) {
				for (size_t k = 0; k < json_array_size(v) && step(o); k++) {
					stack[depth + 1] = json_array_get(v, k);
					render(t, i + 1, nd->end, stack, depth + 1, o);
				}
			} else if (truthy(v)) {
				stack[depth + 1] = v;
				render(t, i + 1, nd->end, stack, depth + 1, o);
			}
			i = nd->end;
			continue;
		}
	}
}

char *
tmpl_render(const struct tmpl *t, const json_t *vars, size_t max, size_t *len)
{
	const json_t *stack[TMPL_MAX_DEPTH + 1];
	struct out o = {.max = max};

	/* Generous for any real page (a loop writes something per element), small enough
	 * that loops writing nothing over large arrays end quickly. */
	o.steps = max > (SIZE_MAX - 65536) / 16 ? SIZE_MAX : 16 * max + 65536;
	stack[0] = vars;
	render(t, 0, t->n, stack, 0, &o);
	if (!o.failed && o.buf == NULL) {
		o.buf = malloc(1);
		o.failed = o.buf == NULL;
	}
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	o.buf[o.len] = '\0';
	if (len != NULL)
		*len = o.len;
	return o.buf;
}
