package tempo

import (
	"encoding/binary"
	"fmt"
	"math/big"
)

// EIP-712 type strings and domain names (protocol.md §6.5). Only the width of
// cumulativeAmount and the domain name differ between the two protocols; a
// signature made for one therefore never verifies under the other.
const (
	domainTypeString    = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
	voucherTypeStringV1 = "Voucher(bytes32 channelId,uint128 cumulativeAmount)"
	voucherTypeStringV2 = "Voucher(bytes32 channelId,uint96 cumulativeAmount)"
	domainNameV1        = "Tempo Stream Channel"
	domainNameV2        = "TIP20 Channel Reserve"
	domainVersion       = "1"
)

// Hashes of the constant strings above, computed once so that a digest costs
// only two Keccak permutation runs beyond the struct hash.
var (
	domainTypehash    = Keccak256([]byte(domainTypeString))
	voucherTypehashV1 = Keccak256([]byte(voucherTypeStringV1))
	voucherTypehashV2 = Keccak256([]byte(voucherTypeStringV2))
	domainNameHashV1  = Keccak256([]byte(domainNameV1))
	domainNameHashV2  = Keccak256([]byte(domainNameV2))
	domainVersionHash = Keccak256([]byte(domainVersion))
)

// Domain is the EIP-712 domain vouchers are signed under: the protocol picks
// the name, ChainID and VerifyingContract come from the challenge's
// methodDetails.chainId and escrowContract.
type Domain struct {
	Protocol          Protocol
	ChainID           uint64
	VerifyingContract Address
}

// Domain is the voucher domain of c: its protocol, chain and escrow contract.
func (c Channel) Domain() Domain {
	return Domain{Protocol: c.Protocol, ChainID: c.ChainID, VerifyingContract: c.Escrow}
}

// Separator is the EIP-712 domainSeparator:
// keccak256(typehash ‖ keccak256(name) ‖ keccak256("1") ‖ uint256(chainId) ‖ address).
// It returns the zero Hash for an unknown protocol; VoucherDigest, the path
// every signature takes, rejects that case with an error instead. A caller
// that verifies many vouchers on one domain may compute it once and keep it.
func (d Domain) Separator() Hash {
	var name Hash
	switch d.Protocol {
	case V1:
		name = domainNameHashV1
	case V2:
		name = domainNameHashV2
	default:
		return Hash{}
	}
	var buf [5 * 32]byte
	copy(buf[0:32], domainTypehash[:])
	copy(buf[32:64], name[:])
	copy(buf[64:96], domainVersionHash[:])
	binary.BigEndian.PutUint64(buf[120:128], d.ChainID)
	copy(buf[160-20:160], d.VerifyingContract[:])
	return Keccak256(buf[:])
}

// voucherTypehash is the Voucher struct typehash of p (zero when unknown).
func (p Protocol) voucherTypehash() Hash {
	switch p {
	case V1:
		return voucherTypehashV1
	case V2:
		return voucherTypehashV2
	}
	return Hash{}
}

// VoucherStructHash is keccak256(voucherTypehash ‖ channelId ‖ uint256(amount))
// for protocol p; it fails when the amount is negative or wider than the
// protocol's uint128/uint96, because such a voucher cannot be redeemed on chain.
func VoucherStructHash(p Protocol, channelID Hash, amount *big.Int) (Hash, error) {
	if err := checkAmount(amount, p); err != nil {
		return Hash{}, err
	}
	var buf [3 * 32]byte
	th := p.voucherTypehash()
	copy(buf[0:32], th[:])
	copy(buf[32:64], channelID[:])
	amount.FillBytes(buf[64:96])
	return Keccak256(buf[:]), nil
}

// VoucherDigest is the EIP-712 digest keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ structHash)
// that a voucher signature covers (protocol.md §6.5).
func VoucherDigest(d Domain, channelID Hash, amount *big.Int) (Hash, error) {
	if !d.Protocol.Valid() {
		return Hash{}, fmt.Errorf("voucher domain: %w %q", ErrUnknownProtocol, string(d.Protocol))
	}
	return voucherDigest(d.Separator(), d.Protocol, channelID, amount)
}

func voucherDigest(sep Hash, p Protocol, channelID Hash, amount *big.Int) (Hash, error) {
	sh, err := VoucherStructHash(p, channelID, amount)
	if err != nil {
		return Hash{}, fmt.Errorf("voucher cumulativeAmount: %w", err)
	}
	var buf [2 + 32 + 32]byte
	buf[0], buf[1] = 0x19, 0x01
	copy(buf[2:34], sep[:])
	copy(buf[34:66], sh[:])
	return Keccak256(buf[:]), nil
}
