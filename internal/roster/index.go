package roster

import "crypto/subtle"

// entry is one roster record with its secrets as digests. The has* flags
// are 0 or 1 so the match can combine them without branching.
type entry struct {
	record         Record
	ssn, fin       digest
	dob, pebd      digest
	hasSSN, hasFIN int
	hasPEBD        int
}

// index is one loaded roster. It is never modified once built: a reload
// builds a new one and swaps it in, so lookups take no lock.
type index struct {
	key     *macKey
	byEDIPI map[string][]entry
	// byUUID and byEmail hold the records that carry a card UUID or an
	// e-mail address (a record may carry several keys: it is then found
	// by each).
	byUUID  map[string][]entry
	byEmail map[string][]entry
	records int
}

// entries returns the records of one key.
func (x *index) entries(kind KeyKind, value string) []entry {
	switch kind {
	case KeyEDIPI:
		return x.byEDIPI[value]
	case KeyCardUUID:
		return x.byUUID[value]
	case KeyEmail:
		return x.byEmail[value]
	}
	return nil
}

// verify matches a normalized claim against the records of its key (its
// EDIPI, card UUID or e-mail address).
//
// A record matches when its SSN (or FIN, as the claim has) and its DOB
// equal the claim's, and, when the claim carries a PEBD and the record has
// one, the PEBDs are equal too. Whether to ask for the PEBD is the site's
// decision ("verify ssn dob pebd"): the enrollment form then requires it
// for every EDIPI whose record has one (NeedsPEBD), so a claim without a
// PEBD only reaches here on sites that do not ask. If the claim's
// identifier and DOB fit a record whose PEBD the claim then fails, nothing
// matches at all: handing out the other records of a dual account without
// the asked-for factor would make it optional.
//
// Every record of the EDIPI is compared in full, each digest in constant
// time, and the comparisons are combined without branching, so neither
// the answer nor its timing tells which value was wrong.
func (x *index) verify(n *normalizedClaim) Result {
	entries := x.entries(n.keyKind, n.keyValue)
	claim := x.key.claimDigests(n)
	var matched []Record
	pebdFailed := 0
	for i := range entries {
		e := &entries[i]
		var id int
		if claim.kind == idSSN {
			id = e.hasSSN & subtle.ConstantTimeCompare(e.ssn[:], claim.id[:])
		} else {
			id = e.hasFIN & subtle.ConstantTimeCompare(e.fin[:], claim.id[:])
		}
		dob := subtle.ConstantTimeCompare(e.dob[:], claim.dob[:])
		pebdEqual := claim.hasPEBD & subtle.ConstantTimeCompare(e.pebd[:], claim.pebd[:])
		pebd := subtle.ConstantTimeSelect(e.hasPEBD&claim.hasPEBD, pebdEqual, 1)

		identified := id & dob
		pebdFailed |= identified & (1 - pebd)
		if identified&pebd == 1 {
			matched = append(matched, e.record)
		}
	}
	if pebdFailed == 1 || len(matched) == 0 {
		return Result{}
	}
	return Result{Match: true, Records: matched}
}

// needsPEBD reports whether any record of the key has a PEBD.
func (x *index) needsPEBD(kind KeyKind, value string) bool {
	entries := x.entries(kind, value)
	for i := range entries {
		if entries[i].hasPEBD == 1 {
			return true
		}
	}
	return false
}
