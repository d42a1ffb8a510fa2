package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
