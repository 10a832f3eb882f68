-- Contract_Cancel_Receipt__c: requests to cancel a contract (R_CONTRACT_CANCEL_RECEIPT), fed
-- to hc.contract_cancel_receipt, related to the contract and customer. The refund bank account
-- stays in the Data Hub.
--
-- key: external_id
-- mode: incremental
-- driving: lv1.r_contract_cancel_receipt
-- lookback_days: 1
-- source: RENTAL.R_CONTRACT_CANCEL_RECEIPT
SELECT
    r.receipt_no AS external_id,
    r.order_no AS opportunity_external_id,
    r.cust_no AS account_external_id,
    r.receipt_dt AS receipt_date,
    r.cancel_type_nm AS cancel_type,
    r.cancel_rsn_nm AS cancel_reason,
    r.cancel_rsn_desc AS cancel_reason_detail,
    r.cancel_hope_dt AS requested_cancel_date,
    r.penalty_amt AS penalty_amount,
    r.refund_amt AS refund_amount,
    r.collect_dt AS collection_date,
    r.proc_status_nm AS status,
    r.remark AS description,
    r.updt_dt AS erp_updated_at,
    r._partition
FROM lv1.r_contract_cancel_receipt AS r
WHERE r._partition BETWEEN :partition_start AND :partition_end
