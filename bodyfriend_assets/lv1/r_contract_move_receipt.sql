-- Relocation requests for installed products (이전설치접수).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: receipt_no
-- mode: full
SELECT DISTINCT ON (receipt_no)
    btrim(s.receipt_no) AS receipt_no,
    lv1.clean_text(s.order_no) AS order_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.yyyymmdd_date(s.receipt_dt) AS receipt_dt,
    lv1.clean_text(s.move_type_cd) AS move_type_cd,
    move_type.minor_nm AS move_type_nm,
    lv1.yyyymmdd_date(s.move_hope_dt) AS move_hope_dt,
    lv1.clean_text(s.old_zip_cd) AS old_zip_cd,
    lv1.clean_text(s.old_addr1) AS old_addr1,
    lv1.clean_text(s.old_addr2) AS old_addr2,
    lv1.clean_text(s.new_zip_cd) AS new_zip_cd,
    lv1.clean_text(s.new_addr1) AS new_addr1,
    lv1.clean_text(s.new_addr2) AS new_addr2,
    s.move_fee_amt,
    lv1.clean_text(s.proc_status_cd) AS proc_status_cd,
    proc_status.minor_nm AS proc_status_nm,
    lv1.clean_text(s.engineer_user_id) AS engineer_user_id,
    lv1.clean_text(s.remark) AS remark,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt
FROM lv0.r_contract_move_receipt AS s
LEFT JOIN lv1.codes('R3003') AS move_type ON move_type.minor_cd = btrim(s.move_type_cd)  -- 이전유형
LEFT JOIN lv1.codes('R2002') AS proc_status ON proc_status.minor_cd = btrim(s.proc_status_cd)  -- 처리상태
ORDER BY receipt_no, s.updt_dt DESC NULLS LAST
