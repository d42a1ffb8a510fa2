package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/portal"
	"github.com/cacgate/cacgate/internal/selfservice"
)

// limitAddress counts an identity check from the request's client address
// against attempts_per_ip, in the self-service attempt guard. Over the
// limit it answers 429 and audits event (with fields); when the count
// cannot be kept (the account database is unreachable) it answers 503,
// since a limit that cannot be checked must not let the attempt through.
// done reports that the response was written.
func (h *Handler) limitAddress(w http.ResponseWriter, r *http.Request, event string, fields ...zap.Field) (done bool, err error) {
	err = h.enrollFlow.Service().Guard().TakeAddress(r.Context(), clientIP(r))
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, selfservice.ErrLimited):
		return true, h.storeUnavailable(w, r, fmt.Errorf("counting an identity check per client address: %w", err))
	}
	h.app.audit.Request(r, event, audit.Failure, append(fields, zap.String("reason", "too_many_attempts_from_address"))...)
	return true, portal.AddressLimited(w, r, h.Contact)
}
