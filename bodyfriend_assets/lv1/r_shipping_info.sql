-- Deliveries and installations (배송정보).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
-- Each run upserts the rows lv0 changed in its days, and in the day before (lookback_days)
-- for rows lv0 filed late under their own, earlier day.
--
-- key: shipping_no
-- mode: incremental
-- driving: lv0.r_shipping_info
-- lookback_days: 1
-- index: order_no
SELECT DISTINCT ON (shipping_no)
    btrim(s.shipping_no) AS shipping_no,
    lv1.clean_text(s.order_no) AS order_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.clean_text(s.goods_cd) AS goods_cd,
    s.qty,
    lv1.clean_text(s.ship_status_cd) AS ship_status_cd,
    ship_status.minor_nm AS ship_status_nm,
    lv1.yyyymmdd_date(s.ship_req_dt) AS ship_req_dt,
    lv1.yyyymmdd_date(s.ship_dt) AS ship_dt,
    lv1.yyyymmdd_date(s.inst_dt) AS inst_dt,
    lv1.clean_text(s.rcv_nm) AS rcv_nm,
    lv1.phone_number(s.rcv_tel_no) AS rcv_tel_no,
    lv1.phone_number(s.rcv_hand_tel_no) AS rcv_hand_tel_no,
    lv1.clean_text(s.zip_cd) AS zip_cd,
    lv1.clean_text(s.addr1) AS addr1,
    lv1.clean_text(s.addr2) AS addr2,
    lv1.clean_text(s.delivery_center_cd) AS delivery_center_cd,
    delivery_center.minor_nm AS delivery_center_nm,
    lv1.clean_text(s.delivery_user_id) AS delivery_user_id,
    lv1.clean_text(s.invoice_no) AS invoice_no,
    lv1.clean_text(s.delivery_memo) AS delivery_memo,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt,
    s._partition
FROM lv0.r_shipping_info AS s
LEFT JOIN lv1.codes('R3001') AS ship_status ON ship_status.minor_cd = btrim(s.ship_status_cd)  -- 배송상태
LEFT JOIN lv1.codes('R2005') AS delivery_center ON delivery_center.minor_cd = btrim(s.delivery_center_cd)  -- 서비스센터
WHERE s._partition BETWEEN :partition_start AND :partition_end
ORDER BY shipping_no, s.updt_dt DESC NULLS LAST
