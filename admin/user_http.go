package admin

import (
	"net/http"

	"github.com/sigil-sts/sigil/internal/httpx"
)

// The user handlers: /admin/v1/users and /admin/v1/users/{id}, where {id}
// is a user ID or a username. No response carries a password or its hash.
// A change that was stored but whose audit record or token revocation
// failed answers 500, like a client deletion: the log says which.

// createUserRequest is the body of POST /admin/v1/users.
type createUserRequest struct {
	UserSpec
	Password string `json:"password"`
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := h.Service.Users(r.Context())
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, us)
	return nil
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) error {
	var req createUserRequest
	if err := httpx.ReadJSON(w, r, maxAdminBody, &req); err != nil {
		return invalid("%v", err)
	}
	u, err := h.Service.CreateUser(r.Context(), req.UserSpec, req.Password)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, u)
	return nil
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.Service.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request) error {
	var upd UserUpdate
	if err := httpx.ReadJSON(w, r, maxAdminBody, &upd); err != nil {
		return invalid("%v", err)
	}
	u, err := h.Service.UpdateUser(r.Context(), r.PathValue("id"), upd)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) setPassword(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Password string `json:"password"`
	}
	if err := httpx.ReadJSON(w, r, maxAdminBody, &req); err != nil {
		return invalid("%v", err)
	}
	if _, err := h.Service.SetPassword(r.Context(), r.PathValue("id"), req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.Service.DeleteUser(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
