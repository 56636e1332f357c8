/*
 * csv.h - records as CSV rows (RFC 4180): a fixed column list per kind,
 * nested values flattened by one rule, text guarded against spreadsheet
 * formula injection. docs/api.md describes the columns and the rule.
 */
#ifndef FACTSD_CSV_H
#define FACTSD_CSV_H

#include "text.h"

#include <facts.h>
#include <stdbool.h>

/* Appends the header row of kind's columns, CRLF-terminated, to b.
 * Returns false when b fails (its cap or memory). */
bool factsd_csv_header(factsd_buf *b, facts_kind kind);

/* Appends rec's row (its kind's columns, CRLF-terminated) to b. Flattening:
 * an object member is the column "object.member"; a list of strings or
 * numbers is joined with ";"; participants are "actor:role;…"; evidence is
 * "source:paragraph:sentence;…" (the quoted phrases are left to JSON); a
 * list of objects of any other shape (an actor's roles) is its compact
 * JSON. A string that begins with =, +, -, @, a tab or a carriage return
 * gets a leading apostrophe. Fields holding a comma, a quote, CR or LF are
 * quoted, quotes doubled. Returns false when b fails. */
bool factsd_csv_row(factsd_buf *b, const facts_record *rec);

/* The number of columns of kind and the name of column i (NULL past the
 * end). Static. Never fails. */
size_t factsd_csv_columns(facts_kind kind);
const char *factsd_csv_column(facts_kind kind, size_t i);

#endif /* FACTSD_CSV_H */
