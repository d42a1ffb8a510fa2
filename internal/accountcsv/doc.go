// Package accountcsv reads and writes cacgate accounts as CSV, the format
// of the admin API's and CLI's import and export: one header row naming
// the columns, in any order, then one account per row.
//
// # Columns
//
//	username, edipi           required in the header; the store checks them
//	given_name, middle_name, family_name, suffix, email, affiliation,
//	status                    active (also when empty), disabled or pending
//	organization, location, work_address, phone
//	categories                roster categories, separated by ';'
//	groups                    access groups, separated by ';'
//	card_sha256               card fingerprints (lowercase hex SHA-256 of
//	                          the certificate), separated by ';'
//	credential, key           the credential kind (cac, piv, piv-i, eca) and
//	                          its key (the card UUID, the ECA key); empty:
//	                          a DoD account keyed by its edipi, which a
//	                          non-DoD account leaves empty
//
// Items of the ';'-separated columns have surrounding spaces trimmed and
// empty items dropped. Within an item, "\;" stands for a ';' that does not
// separate and "\\" for a '\' (so a roster category such as "Army;
// Reserve" is written "Army\; Reserve"); a '\' before any other character
// is an ordinary character. A column left out of the header leaves the field
// empty; an unknown or repeated column name is an error, so a misspelt
// column cannot drop data silently. A UTF-8 byte order mark before the
// header (as spreadsheets write it) is ignored.
//
// # Spreadsheet formulas
//
// A spreadsheet opening a CSV file runs a cell that starts with '=', '+',
// '-' or '@' (or a tab or carriage return) as a formula, which a hostile
// name could use to run commands on the administrator's machine ("CSV
// injection"). Writer therefore puts an apostrophe before such a cell,
// which spreadsheets show as plain text, and Reader removes exactly that
// one apostrophe. So that this is reversible, Writer also puts one before
// a cell that starts with an apostrophe followed by one of those
// characters or by another apostrophe, and Reader removes a leading
// apostrophe only in those cases: what Writer wrote, Reader reads back
// unchanged, and a name such as "'t Hooft" is left alone.
//
// # Bounds
//
// Input is hostile: a cell may hold at most MaxFieldBytes and a row at most
// MaxRecordBytes, so a malformed file cannot make the reader hold more than
// that in memory. Errors name the line and column, never a cell's content.
package accountcsv
