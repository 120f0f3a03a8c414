package issuer

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/sigil-sts/sigil"
	"github.com/sigil-sts/sigil/internal/httpx"
	"github.com/sigil-sts/sigil/statuslist"
)

// serveStatusList serves a Status List Token
// (draft-ietf-oauth-status-list §8). Relying parties cache it for its
// ttl, so it is marked no-cache for intermediaries: a shared cache holding
// it longer would delay revocations by as much again.
func (h *Handler) serveStatusList(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	// One spelling per list: "007" or "+7" is not list 7.
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != raw {
		writeError(w, r, h.Log, &Error{Code: CodeInvalidRequest, Description: "no such status list", Status: http.StatusNotFound})
		return
	}
	if r.URL.Query().Has("time") {
		// §8.4: historical resolution is optional; 501 says it is not offered.
		writeError(w, r, h.Log, &Error{Code: CodeInvalidRequest, Description: "historical status is not supported", Status: http.StatusNotImplemented})
		return
	}
	jwt, err := h.StatusLists.Token(r.Context(), id)
	switch {
	case errors.Is(err, sigil.ErrNotFound):
		writeError(w, r, h.Log, &Error{Code: CodeInvalidRequest, Description: "no such status list", Status: http.StatusNotFound})
		return
	case err != nil:
		writeError(w, r, h.Log, internal(err))
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", statuslist.MediaType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("Content-Length", strconv.Itoa(len(jwt)))
	w.Write([]byte(jwt))
}

// serveStatusListAggregation lists every status list's URI (§9.3).
func (h *Handler) serveStatusListAggregation(w http.ResponseWriter, r *http.Request) {
	uris, err := h.StatusLists.Lists(r.Context())
	if err != nil {
		writeError(w, r, h.Log, internal(err))
		return
	}
	if uris == nil {
		uris = []string{}
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	httpx.WriteJSON(w, http.StatusOK, map[string][]string{"status_lists": uris})
}
