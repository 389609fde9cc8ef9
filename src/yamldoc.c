/* yamldoc: ERB refusal and libyaml's document loader, errors as file:line. */
#include "yamldoc.h"

#include <stdio.h>

static void yamldoc_fail(struct config_error *err, const char *name, int line, const char *msg,
			 const char *detail)
{
	snprintf(err->where, sizeof(err->where), "%s:%d", name, line);
	snprintf(err->msg, sizeof(err->msg), "%s%s", msg, detail ? detail : "");
}

/* 0, or the 1-based line of the first "<%". */
static int yamldoc_erb_line(const char *text, size_t len)
{
	int line = 1;
	for (size_t i = 0; i + 1 < len; i++) {
		if (text[i] == '\n')
			line++;
		else if (text[i] == '<' && text[i + 1] == '%')
			return line;
	}
	return 0;
}

int yamldoc_load(yaml_document_t *doc, const char *text, size_t len, const char *name,
		 const char *erb_hint, struct config_error *err)
{
	yaml_parser_t parser;
	char msg[sizeof(err->msg)];
	int line = yamldoc_erb_line(text, len);
	if (line) {
		yamldoc_fail(err, name, line, "ERB (<% ... %>) is not supported: ", erb_hint);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		yamldoc_fail(err, name, 0, "cannot parse (out of memory)", NULL);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	int rc = 0;
	if (!yaml_parser_load(&parser, doc)) {
		snprintf(msg, sizeof(msg), "YAML: %s%s%s",
			 parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
			 parser.context ? parser.context : "");
		yamldoc_fail(err, name, (int)parser.problem_mark.line + 1, msg, NULL);
		rc = -1;
	}
	yaml_parser_delete(&parser);
	return rc;
}

int yamldoc_line(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}
