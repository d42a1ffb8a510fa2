package selfservice

import "strings"

// Categories is the list of personnel categories the roster uses, from the
// AKO/DKO eligible account types. A site's "eligible" option names a subset;
// the default is all of them (and any other category the roster reports).
var Categories = []string{
	"Active Army", "Army Reserve", "Army National Guard", "Army National Guard AGR", "Army National Guard Technician",
	"DA Civilian", "DA Civilian Retired", "Army Retired", "Individual Ready Reserve", "NAF Civilian",
	"U.S. Military Academy Cadet", "ROTC Cadet", "Future Soldier",
	"Active Air Force", "Air Force Reserve", "Air Force Civilian", "Air National Guard AGR", "Air National Guard Technician",
	"Active Navy", "Navy Reserve", "Navy Civilian",
	"Active Marine Corps", "Marine Corps Reserve", "Marine Corps Civilian",
	"Active Coast Guard", "Coast Guard Reserve", "Coast Guard Civilian",
	"Public Health Service", "DoD Civilian", "Contractor",
}

// EligibleCategories returns which of a person's roster categories the
// site accepts, in the roster's order and without duplicates. allowed empty
// means every category. Matching ignores case and surrounding spaces, so a
// Caddyfile's "dod civilian" matches the roster's "DoD Civilian". A person
// with two records (say Army Retired and DA Civilian) gets one dual account
// carrying every eligible category; none eligible means no account.
func EligibleCategories(personCategories, allowed []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range personCategories {
		key := strings.ToLower(strings.TrimSpace(c))
		if key == "" || seen[key] {
			continue
		}
		if len(allowed) > 0 && !containsFold(allowed, key) {
			continue
		}
		seen[key] = true
		out = append(out, strings.TrimSpace(c))
	}
	return out
}

func containsFold(list []string, key string) bool {
	for _, s := range list {
		if strings.ToLower(strings.TrimSpace(s)) == key {
			return true
		}
	}
	return false
}
