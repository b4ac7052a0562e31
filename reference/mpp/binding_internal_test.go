package mpp

import "testing"

// TestBindingInput is the worked example of protocol.md §2.1: the exact
// string the HMAC is computed over, with six separators and empty slots for
// absent optional parameters.
func TestBindingInput(t *testing.T) {
	const request = "eyJhbW91bnQiOiIxMDAwMDAwIn0" // {"amount":"1000000"}
	c := Challenge{Realm: "api.example.com", Method: "tempo", Intent: "charge", Request: request}
	if got, want := string(bindingInput(c)), "api.example.com|tempo|charge|eyJhbW91bnQiOiIxMDAwMDAwIn0|||"; got != want {
		t.Fatalf("binding input = %q, want %q", got, want)
	}
	if got, want := ComputeID([]byte("test-vector-secret"), c), "X6v1eo7fJ76gAxqY0xN9Jd__4lUyDDYmriryOM-5FO4"; got != want {
		t.Fatalf("id = %s, want %s", got, want)
	}

	c.Opaque = "eyJwaSI6InBpXzNhYmMxMjNYWVoifQ" // {"pi":"pi_3abc123XYZ"}
	if got, want := string(bindingInput(c)), "api.example.com|tempo|charge|eyJhbW91bnQiOiIxMDAwMDAwIn0|||eyJwaSI6InBpXzNhYmMxMjNYWVoifQ"; got != want {
		t.Fatalf("binding input with opaque = %q, want %q", got, want)
	}

	// ID and description never enter the input.
	c.ID, c.Description = "anything", "display text"
	if got, want := string(bindingInput(c)), "api.example.com|tempo|charge|eyJhbW91bnQiOiIxMDAwMDAwIn0|||eyJwaSI6InBpXzNhYmMxMjNYWVoifQ"; got != want {
		t.Fatalf("binding input with id and description = %q, want %q", got, want)
	}
}
