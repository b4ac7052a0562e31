package tempo

import (
	"encoding/binary"
	"fmt"
)

// DeriveID computes the channelId the escrow assigns to c (protocol.md §6.4):
//
//	v1: keccak256(abi.encode(payer, payee, token, salt, authorizedSigner, escrow, uint256 chainId))
//	v2: keccak256(abi.encode(payer, payee, operator, token, salt, authorizedSigner,
//	                         expiringNonceHash, escrow, uint256 chainId))
//
// Servers recompute it rather than trust a claimed id, since the id is what
// binds vouchers to one payer, payee, token and escrow. c.ID is ignored. The
// v1 form has no operator or expiringNonceHash; c's values for them are
// ignored there.
func (c Channel) DeriveID() (Hash, error) {
	// abi.encode of static types: every word is 32 bytes, addresses
	// left-padded with zeros, integers big-endian.
	var words [9][32]byte
	addr := func(w *[32]byte, a Address) { copy(w[12:], a[:]) }
	var n int
	switch c.Protocol {
	case V1:
		addr(&words[0], c.Payer)
		addr(&words[1], c.Payee)
		addr(&words[2], c.Token)
		words[3] = c.Salt
		addr(&words[4], c.AuthorizedSigner)
		addr(&words[5], c.Escrow)
		binary.BigEndian.PutUint64(words[6][24:], c.ChainID)
		n = 7
	case V2:
		addr(&words[0], c.Payer)
		addr(&words[1], c.Payee)
		addr(&words[2], c.Operator)
		addr(&words[3], c.Token)
		words[4] = c.Salt
		addr(&words[5], c.AuthorizedSigner)
		words[6] = c.ExpiringNonceHash
		addr(&words[7], c.Escrow)
		binary.BigEndian.PutUint64(words[8][24:], c.ChainID)
		n = 9
	default:
		return Hash{}, fmt.Errorf("derive channelId: %w %q", ErrUnknownProtocol, string(c.Protocol))
	}
	var buf [9 * 32]byte
	for i := 0; i < n; i++ {
		copy(buf[i*32:], words[i][:])
	}
	return Keccak256(buf[:n*32]), nil
}
