/* job_text: the JSON text tools under job.c and job_build.c: UTF-8 checks
 * and string encoding, and the top-level member scanner and splicer that
 * rewrite a payload while keeping every other byte. Separate because both
 * parsing (failure rewrites) and building use them. */
#include "job_int.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- UTF-8 and string encoding ---- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is invalid
 * (bad lead or continuation byte, overlong form, surrogate, > U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return n;
}

bool job_utf8_is_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = utf8_seq_len(p);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

static char *dump_json(json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!s)
		abort(); /* only on OOM: every string handed to jansson is valid UTF-8 */
	char *out = xstrdup(s);
	free(s);
	return out;
}

/* s as a JSON string literal, escaped by jansson. Invalid UTF-8 becomes
 * U+FFFD (as Ruby's scrub) and the text is cut to at most max characters
 * (0 = no limit) without splitting a sequence. NULL encodes as "". */
char *job_encode_string(const char *s, size_t max)
{
	struct util_buf b = {0};
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	for (size_t chars = 0; *p && (!max || chars < max); chars++) {
		size_t n = utf8_seq_len(p);
		if (n)
			util_buf_add(&b, p, n);
		else
			util_buf_adds(&b, "\xef\xbf\xbd");
		p += n ? n : 1;
	}
	json_t *js = json_stringn(b.p ? b.p : "", b.len);
	free(b.p);
	if (!js)
		abort();
	char *out = dump_json(js);
	json_decref(js);
	return out;
}

/* ---- top-level member scanner (on text jansson has validated) ---- */

static size_t skip_ws(const char *s, size_t i)
{
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	return i;
}

/* s[i] is '"'; returns the offset after the closing quote, 0 on error. */
static size_t skip_string(const char *s, size_t i)
{
	for (i++; s[i] && s[i] != '"'; i++)
		if (s[i] == '\\' && s[++i] == '\0')
			return 0;
	return s[i] == '"' ? i + 1 : 0;
}

static size_t skip_container(const char *s, size_t i)
{
	int depth = 0;
	while (s[i]) {
		if (s[i] == '"') {
			if (!(i = skip_string(s, i)))
				return 0;
			continue;
		}
		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return 0;
}

/* Returns the offset just after the value starting at s[i], 0 on error. */
static size_t skip_value(const char *s, size_t i)
{
	size_t start = i;
	if (s[i] == '"')
		return skip_string(s, i);
	if (s[i] == '{' || s[i] == '[')
		return skip_container(s, i);
	while (s[i] && !strchr(",}] \t\r\n", s[i]))
		i++;
	return i > start ? i : 0;
}

static void members_push(struct members *ms, const struct member *m)
{
	if (ms->n == ms->cap) {
		ms->cap = ms->cap ? ms->cap * 2 : 16;
		ms->m = xrealloc(ms->m, ms->cap * sizeof(*ms->m));
	}
	ms->m[ms->n++] = *m;
}

/* Finds every top-level member of the object text s. 0, or -1 (ms empty). */
int job_scan_members(const char *s, struct members *ms)
{
	size_t i = skip_ws(s, 0);
	memset(ms, 0, sizeof(*ms));
	if (s[i] != '{')
		return -1;
	ms->end = i + 1;
	i = skip_ws(s, i + 1);
	if (s[i] == '}')
		return 0;
	for (;;) {
		struct member m;
		m.key.off = i;
		if (s[i] != '"' || !(i = skip_string(s, i)))
			break;
		m.key.len = i - m.key.off;
		i = skip_ws(s, i);
		if (s[i] != ':')
			break;
		m.val.off = i = skip_ws(s, i + 1);
		if (!(i = skip_value(s, i)))
			break;
		m.val.len = i - m.val.off;
		members_push(ms, &m);
		ms->end = i;
		i = skip_ws(s, i);
		if (s[i] == '}')
			return 0;
		if (s[i] != ',')
			break;
		i = skip_ws(s, i + 1);
	}
	free(ms->m);
	memset(ms, 0, sizeof(*ms));
	return -1;
}

/* Whether the quoted key text at span k names `name`; escaped keys
 * ("\u0072etry") are decoded by jansson. */
static bool key_is(const char *s, struct span k, const char *name)
{
	size_t n = strlen(name);
	if (!memchr(s + k.off, '\\', k.len))
		return k.len == n + 2 && !memcmp(s + k.off + 1, name, n);
	json_t *v = json_loadb(s + k.off, k.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	bool same = json_is_string(v) && json_string_length(v) == n &&
	            !memcmp(json_string_value(v), name, n);
	json_decref(v);
	return same;
}

/* The last member named `name` (the one JSON readers use), or NULL. */
const struct member *job_members_find(const char *s, const struct members *ms, const char *name)
{
	for (size_t i = ms->n; i-- > 0;)
		if (key_is(s, ms->m[i].key, name))
			return &ms->m[i];
	return NULL;
}

bool job_span_is_int(const char *s, struct span v)
{
	if (!v.len || !(s[v.off] == '-' || (s[v.off] >= '0' && s[v.off] <= '9')))
		return false;
	for (size_t i = v.off; i < v.off + v.len; i++)
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
			return false;
	return true;
}

/* The span's text without the white space outside strings. */
char *job_span_compact(const char *s, struct span v)
{
	struct util_buf b = {0};
	size_t i = v.off, end = v.off + v.len;
	while (i < end) {
		if (s[i] == '"') {
			size_t j = skip_string(s, i);
			j = j && j <= end ? j : end;
			util_buf_add(&b, s + i, j - i);
			i = j;
		} else {
			if (!strchr(" \t\r\n", s[i]))
				util_buf_add(&b, s + i, 1);
			i++;
		}
	}
	return util_buf_take(&b);
}

/* ---- splicing ---- */

static struct edit *edit_for(const char *s, const struct member *m, struct edit *ed, size_t ned)
{
	for (size_t i = 0; i < ned; i++)
		if (key_is(s, m->key, ed[i].key))
			return &ed[i];
	return NULL;
}

/* s with the value of every member named in ed replaced in place (each
 * occurrence of a duplicated key), and the members not present appended in
 * ed's order just after the last value. Every other byte is copied. */
char *job_splice(const char *s, const struct members *ms, struct edit *ed, size_t ned)
{
	struct util_buf b = {0};
	size_t pos = 0;
	bool empty = ms->n == 0;
	for (size_t i = 0; i < ms->n; i++) {
		const struct member *m = &ms->m[i];
		struct edit *e = edit_for(s, m, ed, ned);
		if (!e)
			continue;
		util_buf_add(&b, s + pos, m->val.off - pos);
		util_buf_adds(&b, e->val);
		e->done = true;
		pos = m->val.off + m->val.len;
	}
	util_buf_add(&b, s + pos, ms->end - pos);
	for (size_t i = 0; i < ned; i++) {
		if (ed[i].done)
			continue;
		util_buf_adds(&b, empty ? "\"" : ",\"");
		util_buf_adds(&b, ed[i].key);
		util_buf_adds(&b, "\":");
		util_buf_adds(&b, ed[i].val);
		empty = false;
	}
	util_buf_adds(&b, s + ms->end);
	return util_buf_take(&b);
}
