package roster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxReplyBytes bounds a service reply. A real one is a few hundred bytes.
const maxReplyBytes = 64 << 10

// wireReply is the service's answer as sent. Pointers tell a missing field
// from a zero one.
type wireReply struct {
	Match   *bool        `json:"match"`
	Known   *bool        `json:"known"`
	Records []wireRecord `json:"records"`
}

type wireRecord struct {
	EDIPI        *string `json:"edipi"`
	CardUUID     *string `json:"card_uuid"`
	Email        *string `json:"email"`
	Category     string  `json:"category"`
	Last         string  `json:"last"`
	First        string  `json:"first"`
	Middle       string  `json:"middle"`
	Organization string  `json:"organization"`
}

// readReply checks the status and media type, reads at most maxReplyBytes
// and decodes exactly one JSON object without unknown fields. Its errors
// describe the reply's shape and never quote its content: a broken service
// might echo the SSN.
func readReply(resp *http.Response) (*wireReply, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable(fmt.Sprintf("the roster service answered HTTP %d", resp.StatusCode), nil)
	}
	mediaType, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return nil, unavailable("the roster service's reply is not application/json", nil)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, unavailable("reading the roster service's reply failed", err)
	}
	if len(data) > maxReplyBytes {
		return nil, unavailable(fmt.Sprintf("the roster service's reply is larger than %d bytes", maxReplyBytes), nil)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var reply wireReply
	if err := dec.Decode(&reply); err != nil {
		return nil, unavailable(describeJSONError(err), nil)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, unavailable("the roster service's reply has data after its JSON object", nil)
	}
	return &reply, nil
}

// describeJSONError says what is wrong with a reply without repeating
// encoding/json's messages, which quote unknown field names and values.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var wrongType *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the roster service's reply is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the roster service's reply is cut short"
	case errors.As(err, &syntax):
		return fmt.Sprintf("the roster service's reply is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &wrongType) && wrongType.Field == "":
		return "the roster service's reply is not a JSON object"
	case errors.As(err, &wrongType):
		// Field is a path of the protocol's own names, such as records.last.
		return fmt.Sprintf("the roster service's reply has the wrong type for %s", wrongType.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "the roster service's reply has a field this gateway does not know"
	default:
		return "the roster service's reply is not the expected JSON object"
	}
}

// result checks the reply's content against the claim's key.
func (r *wireReply) result(kind KeyKind, key string) (Result, error) {
	if r.Match == nil {
		return Result{}, unavailable("the roster service's reply has no match field", nil)
	}
	if r.Known != nil && (kind == KeyEDIPI || *r.Match) {
		// "known" is for a no-match on a non-DoD key alone: an EDIPI's
		// records are not to be told apart from a wrong answer.
		return Result{}, unavailable("the roster service's reply has a known field where it has no place", nil)
	}
	if !*r.Match {
		if len(r.Records) > 0 {
			return Result{}, unavailable("the roster service's reply says no match yet lists records", nil)
		}
		return Result{NoRecord: r.Known != nil && !*r.Known}, nil
	}
	if len(r.Records) == 0 {
		return Result{}, unavailable("the roster service's reply says match but lists no record", nil)
	}
	if len(r.Records) > maxRecordsPerEDIPI {
		return Result{}, unavailable(fmt.Sprintf("the roster service's reply lists more than %d records", maxRecordsPerEDIPI), nil)
	}
	records := make([]Record, 0, len(r.Records))
	categories := make(map[string]bool, len(r.Records))
	for i, w := range r.Records {
		// A record for another person means the service mixed up its
		// answers; none of them can be trusted. A record names no key
		// but the one asked about: a non-DoD account has no EDIPI.
		rec := Record{}
		for _, f := range []struct {
			kind KeyKind
			sent *string
			dst  *string
		}{{KeyEDIPI, w.EDIPI, &rec.EDIPI}, {KeyCardUUID, w.CardUUID, &rec.CardUUID}, {KeyEmail, w.Email, &rec.Email}} {
			switch {
			case f.kind == kind && f.sent != nil && !sameKey(kind, *f.sent, key):
				return Result{}, unavailable(fmt.Sprintf("record %d of the roster service's reply is for another %s", i+1, kind), nil)
			case f.kind == kind:
				*f.dst = key
			case f.sent != nil:
				return Result{}, unavailable(fmt.Sprintf("record %d of the roster service's reply has a %s field where it has no place", i+1, f.kind), nil)
			}
		}
		rec.Category = w.Category
		rec.Last, rec.First, rec.Middle, rec.Organization = w.Last, w.First, w.Middle, w.Organization
		if problem := cleanRecordText(&rec); problem != "" {
			return Result{}, unavailable(fmt.Sprintf("record %d of the roster service's reply: %s", i+1, problem), nil)
		}
		category := strings.ToLower(rec.Category)
		if categories[category] {
			return Result{}, unavailable(fmt.Sprintf("record %d of the roster service's reply repeats a category", i+1), nil)
		}
		categories[category] = true
		records = append(records, rec)
	}
	return Result{Match: true, Records: records}, nil
}

// sameKey reports whether a key the service sent back is the one asked
// about, in canonical form.
func sameKey(kind KeyKind, sent, asked string) bool {
	v, ok := normalizeKey(kind, sent)
	return ok && v == asked
}
