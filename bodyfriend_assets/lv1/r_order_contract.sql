-- Rental and sales contracts (주문계약).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
-- Indexed by cust_no: lv2.opportunity finds a changed account's contracts by it.
-- Each run upserts the rows lv0 changed in its days, and in the day before (lookback_days)
-- for rows lv0 filed late under their own, earlier day.
--
-- key: order_no
-- mode: incremental
-- driving: lv0.r_order_contract
-- lookback_days: 1
-- index: cust_no
SELECT DISTINCT ON (order_no)
    btrim(s.order_no) AS order_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.yyyymmdd_date(s.cont_dt) AS cont_dt,
    lv1.yyyymmdd_date(s.order_dt) AS order_dt,
    lv1.clean_text(s.cont_type_cd) AS cont_type_cd,
    cont_type.minor_nm AS cont_type_nm,
    lv1.clean_text(s.order_status_cd) AS order_status_cd,
    order_status.minor_nm AS order_status_nm,
    lv1.clean_text(s.sales_chnl_cd) AS sales_chnl_cd,
    sales_chnl.minor_nm AS sales_chnl_nm,
    lv1.clean_text(s.goods_cd) AS goods_cd,
    s.qty,
    lv1.clean_text(s.cont_period_cd) AS cont_period_cd,
    cont_period.minor_nm AS cont_period_nm,
    s.rental_amt,
    s.discount_amt,
    s.discount_rate,
    s.reg_fee_amt,
    s.sale_amt,
    s.vat_amt,
    s.deposit_amt,
    s.free_month_cnt,
    lv1.clean_text(s.promotion_cd) AS promotion_cd,
    lv1.clean_text(s.gift_nm) AS gift_nm,
    lv1.clean_text(s.pay_method_cd) AS pay_method_cd,
    pay_method.minor_nm AS pay_method_nm,
    lv1.clean_text(s.bank_cd) AS bank_cd,
    bank.minor_nm AS bank_nm,
    lv1.clean_text(s.acct_no) AS acct_no,
    lv1.clean_text(s.acct_holder_nm) AS acct_holder_nm,
    lv1.clean_text(s.card_co_cd) AS card_co_cd,
    card_co.minor_nm AS card_co_nm,
    lv1.clean_text(s.card_no) AS card_no,
    lv1.clean_text(s.pay_day) AS pay_day,
    lv1.yyyymmdd_date(s.first_pay_dt) AS first_pay_dt,
    s.credit_grade,
    lv1.yyyymmdd_date(s.credit_chk_dt) AS credit_chk_dt,
    lv1.yyyymmdd_date(s.inst_req_dt) AS inst_req_dt,
    lv1.yyyymmdd_date(s.inst_dt) AS inst_dt,
    lv1.yyyymmdd_date(s.rental_start_dt) AS rental_start_dt,
    lv1.yyyymmdd_date(s.end_dt) AS end_dt,
    lv1.clean_text(s.inst_zip_cd) AS inst_zip_cd,
    lv1.clean_text(s.inst_addr1) AS inst_addr1,
    lv1.clean_text(s.inst_addr2) AS inst_addr2,
    lv1.clean_text(s.rcv_nm) AS rcv_nm,
    lv1.phone_number(s.rcv_tel_no) AS rcv_tel_no,
    lv1.phone_number(s.rcv_hand_tel_no) AS rcv_hand_tel_no,
    lv1.clean_text(s.sales_user_id) AS sales_user_id,
    lv1.clean_text(s.manager_user_id) AS manager_user_id,
    lv1.clean_text(s.lounge_cd) AS lounge_cd,
    lv1.clean_text(s.sales_grp) AS sales_grp,
    lv1.clean_text(s.sales_org) AS sales_org,
    lv1.clean_text(s.item_group_cd) AS item_group_cd,
    lv1.yyyymmdd_date(s.cancel_dt) AS cancel_dt,
    lv1.clean_text(s.cancel_rsn_cd) AS cancel_rsn_cd,
    cancel_rsn.minor_nm AS cancel_rsn_nm,
    lv1.clean_text(s.inst_region_cd) AS inst_region_cd,
    inst_region.minor_nm AS inst_region_nm,
    lv1.clean_text(s.mng_center_cd) AS mng_center_cd,
    mng_center.minor_nm AS mng_center_nm,
    lv1.clean_text(s.approval_no) AS approval_no,
    lv1.yes_no(s.ownership_trans_yn) AS ownership_trans_yn,
    lv1.yyyymmdd_date(s.ownership_trans_dt) AS ownership_trans_dt,
    lv1.yes_no(s.sign_yn) AS sign_yn,
    lv1.yes_no(s.e_cont_yn) AS e_cont_yn,
    s.e_cont_doc_id,
    lv1.yes_no(s.happy_call_yn) AS happy_call_yn,
    lv1.yyyymmdd_date(s.happy_call_dt) AS happy_call_dt,
    lv1.yes_no(s.tax_invoice_yn) AS tax_invoice_yn,
    lv1.yes_no(s.corp_yn) AS corp_yn,
    lv1.yes_no(s.emp_sale_yn) AS emp_sale_yn,
    lv1.clean_text(s.origin_order_no) AS origin_order_no,
    lv1.clean_text(s.homeshop_order_no) AS homeshop_order_no,
    lv1.clean_text(s.serial_no) AS serial_no,
    s.penalty_amt,
    s.unpaid_amt,
    s.tot_paid_amt,
    s.paid_cnt,
    s.overdue_cnt,
    s.commission_amt,
    s.cont_ver,
    s.cont_rate,
    lv1.clean_text(s.remark) AS remark,
    lv1.clean_text(s.delivery_memo) AS delivery_memo,
    lv1.clean_text(s.order_memo) AS order_memo,
    s.crm_flag,
    lv1.yes_no(s.recontract_yn) AS recontract_yn,
    lv1.yes_no(s.dormant_yn) AS dormant_yn,
    lv1.yes_no(s.use_yn) AS use_yn,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt,
    s._partition
FROM lv0.r_order_contract AS s
LEFT JOIN lv1.codes('R1002') AS cont_type ON cont_type.minor_cd = btrim(s.cont_type_cd)  -- 계약유형
LEFT JOIN lv1.codes('R1001') AS order_status ON order_status.minor_cd = btrim(s.order_status_cd)  -- 주문상태
LEFT JOIN lv1.codes('R1003') AS sales_chnl ON sales_chnl.minor_cd = btrim(s.sales_chnl_cd)  -- 판매채널
LEFT JOIN lv1.codes('R1007') AS cont_period ON cont_period.minor_cd = btrim(s.cont_period_cd)  -- 약정기간
LEFT JOIN lv1.codes('R1004') AS pay_method ON pay_method.minor_cd = btrim(s.pay_method_cd)  -- 결제수단
LEFT JOIN lv1.codes('R1005') AS bank ON bank.minor_cd = btrim(s.bank_cd)  -- 은행
LEFT JOIN lv1.codes('R1006') AS card_co ON card_co.minor_cd = btrim(s.card_co_cd)  -- 카드사
LEFT JOIN lv1.codes('R3002') AS cancel_rsn ON cancel_rsn.minor_cd = btrim(s.cancel_rsn_cd)  -- 해지사유
LEFT JOIN lv1.codes('C1004') AS inst_region ON inst_region.minor_cd = btrim(s.inst_region_cd)  -- 시도
LEFT JOIN lv1.codes('R2005') AS mng_center ON mng_center.minor_cd = btrim(s.mng_center_cd)  -- 서비스센터
WHERE s._partition BETWEEN :partition_start AND :partition_end
ORDER BY order_no, s.updt_dt DESC NULLS LAST
