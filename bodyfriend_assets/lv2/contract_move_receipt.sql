-- Contract_Move_Receipt__c: requests to move an installed product to a new address
-- (R_CONTRACT_MOVE_RECEIPT), fed to hc.contract_move_receipt, related to the contract and
-- customer. Each address (old, new) is the one refined by lv1ex where it was
-- (lv1.address_master: street and postal code), else address line 1 and 2 joined by a space.
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
    coalesce(refined_old.postal_code, r.old_zip_cd) AS old_postal_code,
    coalesce(refined_old.street, NULLIF(concat_ws(' ', r.old_addr1, r.old_addr2), '')) AS old_street,
    coalesce(refined_new.postal_code, r.new_zip_cd) AS new_postal_code,
    coalesce(refined_new.street, NULLIF(concat_ws(' ', r.new_addr1, r.new_addr2), '')) AS new_street,
    r.move_fee_amt AS move_fee,
    r.proc_status_nm AS status,
    engineer.user_nm AS engineer_name,
    r.remark AS description,
    r.updt_dt AS erp_updated_at
FROM lv1.r_contract_move_receipt AS r
LEFT JOIN lv1.v_erp_user AS engineer
    ON engineer.user_id = r.engineer_user_id
LEFT JOIN lv1.refined_addresses() AS refined_old
    ON refined_old.legacy_address = lv1.legacy_address(r.old_addr1, r.old_addr2)
LEFT JOIN lv1.refined_addresses() AS refined_new
    ON refined_new.legacy_address = lv1.legacy_address(r.new_addr1, r.new_addr2)
