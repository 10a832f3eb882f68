-- Contract_Move_Receipt__c: requests to move an installed product to a new address
-- (R_CONTRACT_MOVE_RECEIPT), fed to hc.contract_move_receipt, related to the contract and
-- customer. Street = address line 1 and 2 joined by a space.
--
-- key: external_id
-- mode: full
-- source: RENTAL.R_CONTRACT_MOVE_RECEIPT
SELECT
    r.receipt_no AS external_id,
    r.order_no AS opportunity_external_id,
    r.cust_no AS account_external_id,
    r.receipt_dt AS receipt_date,
    r.move_type_nm AS move_type,
    r.move_hope_dt AS requested_move_date,
    r.old_zip_cd AS old_postal_code,
    NULLIF(concat_ws(' ', r.old_addr1, r.old_addr2), '') AS old_street,
    r.new_zip_cd AS new_postal_code,
    NULLIF(concat_ws(' ', r.new_addr1, r.new_addr2), '') AS new_street,
    r.move_fee_amt AS move_fee,
    r.proc_status_nm AS status,
    engineer.user_nm AS engineer_name,
    r.remark AS description,
    r.updt_dt AS erp_updated_at
FROM lv1.r_contract_move_receipt AS r
LEFT JOIN lv1.v_erp_user AS engineer
    ON engineer.user_id = r.engineer_user_id
