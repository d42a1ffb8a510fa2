package store

import (
	"strconv"
	"strings"
)

// rebindDollar rewrites the store's '?' placeholders into PostgreSQL's $1,
// $2, ... in order. A '?' inside a string literal, a quoted identifier, a
// dollar-quoted string or a comment is text, not a placeholder, and is
// left alone: migrations are run through the same executor, and their
// comments may well ask questions. (The store's queries do not use
// PostgreSQL's jsonb operators ?, ?| and ?&, which this would take for
// placeholders.)
func rebindDollar(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); {
		c := query[i]
		var end int
		switch {
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i++
			continue
		case c == '\'':
			end = quotedEnd(query, i, '\'', isEscapeString(query, i))
		case c == '"':
			end = quotedEnd(query, i, '"', false)
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			end = lineCommentEnd(query, i)
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			end = blockCommentEnd(query, i)
		case c == '$' && (i == 0 || !isIdentByte(query[i-1])):
			end = dollarQuotedEnd(query, i)
		default:
			end = i + 1
		}
		b.WriteString(query[i:end])
		i = end
	}
	return b.String()
}

// quotedEnd returns the index just past the quoted text opening at start,
// where a doubled quote stands for itself and, in an escape string
// (E'...'), a backslash escapes the next byte. Unterminated text runs to
// the end: the server will reject the query anyway.
func quotedEnd(query string, start int, quote byte, backslashEscapes bool) int {
	for i := start + 1; i < len(query); i++ {
		switch {
		case backslashEscapes && query[i] == '\\':
			i++
		case query[i] == quote:
			if i+1 < len(query) && query[i+1] == quote {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(query)
}

// isEscapeString reports whether the quote at i opens an E'...' string.
func isEscapeString(query string, i int) bool {
	return i > 0 && (query[i-1] == 'E' || query[i-1] == 'e') && (i == 1 || !isIdentByte(query[i-2]))
}

func lineCommentEnd(query string, start int) int {
	if j := strings.IndexByte(query[start:], '\n'); j >= 0 {
		return start + j + 1
	}
	return len(query)
}

// blockCommentEnd handles nesting, which PostgreSQL allows in /* */.
func blockCommentEnd(query string, start int) int {
	depth := 0
	for i := start; i+1 < len(query); i++ {
		switch {
		case query[i] == '/' && query[i+1] == '*':
			depth++
			i++
		case query[i] == '*' && query[i+1] == '/':
			depth--
			i++
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(query)
}

// dollarQuotedEnd returns the index past a $tag$...$tag$ string opening at
// start, or start+1 if the '$' opens none (a positional parameter such as
// $1 in a query already written for PostgreSQL).
func dollarQuotedEnd(query string, start int) int {
	j := start + 1
	for j < len(query) && query[j] != '$' && isIdentByte(query[j]) && !(j == start+1 && '0' <= query[j] && query[j] <= '9') {
		j++
	}
	if j >= len(query) || query[j] != '$' {
		return start + 1
	}
	tag := query[start : j+1]
	if k := strings.Index(query[j+1:], tag); k >= 0 {
		return j + 1 + k + len(tag)
	}
	return len(query)
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}
