// Package loyalty is the loyalty stage: it applies campaigns kept in PostgreSQL (tables
// campaigns and campaign_grants) to priced payments, records the rewards on the payment and
// forwards it to payments.rewarded.
//
// Cash rewards (discounts, random reductions, rebates) are paid from the campaign's budget
// account in the ledger; the stage promises no more than was funded into it (a soft check:
// the ledger's no-overdraft rule on the budget account is the hard one, applied by the
// posting stage). It owns the campaign tables and never writes ledger tables, except
// opening a campaign's budget account through the ledger's API.
package loyalty
