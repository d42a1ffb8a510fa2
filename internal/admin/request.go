package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// MaxJSONBody bounds a JSON request body of the admin API.
const MaxJSONBody = 64 << 10

// DecodeJSON reads a small JSON request body into v strictly: unknown
// fields, trailing data and oversized bodies are errors (*Error: 400, or
// 413 for a body over MaxJSONBody), so a typo in a field name is not
// silently ignored.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		if err == nil {
			return BadRequest(errors.New("request body: more than one JSON value"))
		}
		return bodyError(err)
	}
	return nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return BadRequest(errors.New("request body is empty; a JSON object is expected"))
	}
	return BadRequest(fmt.Errorf("request body: %w", err))
}

// ReadImportRequest reads an import request (POST /cacgate/accounts/import):
// its only query parameter is on_conflict, its body CSV (Content-Type
// text/csv) of at most limit bytes. The body is read whole before the
// import's transaction begins, so a slow client cannot hold the
// database's write lock. Errors are *Error (400, 413 or 415).
func ReadImportRequest(w http.ResponseWriter, r *http.Request, limit int64) (csv []byte, onConflict string, err error) {
	for k, v := range r.URL.Query() {
		if k != "on_conflict" || len(v) > 1 {
			return nil, "", BadRequest(fmt.Errorf("unknown or repeated query parameter %q (only on_conflict)", Clip(k, 40)))
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "application/csv") {
		return nil, "", Errorf(http.StatusUnsupportedMediaType, "send the accounts as Content-Type: text/csv")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if tooBig := new(http.MaxBytesError); errors.As(err, &tooBig) {
			return nil, "", Errorf(http.StatusRequestEntityTooLarge, "CSV larger than %d MiB: import it with the CLI on the database instead", limit>>20)
		}
		return nil, "", BadRequest(fmt.Errorf("reading the CSV: %w", err))
	}
	return body, r.URL.Query().Get("on_conflict"), nil
}
